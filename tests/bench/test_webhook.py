"""The webhook bench's accounts against a real simulator: made on the first run, reused by the next
(a run must not leave more connections to reconcile than it found), background connections included."""

from __future__ import annotations

from sqlalchemy import func, select

from bench.webhook import BENCH_USER, prepare, prepare_background
from core.infra.db import session_scope
from core.models import BrokerConnection, Order, User


def _bench_connections() -> int:
    with session_scope() as session:
        return session.scalar(
            select(func.count()).select_from(BrokerConnection).join(User).where(User.username == BENCH_USER)
        )


def test_bench_accounts_and_background_connections_are_made_once_and_reused(infra, sim, redis_client):
    first = [prepare("http://web.test", sim.url, number) for number in (1, 2)]
    background = prepare_background(sim.url, 3)
    assert _bench_connections() == 5
    assert [prepare("http://web.test", sim.url, number) for number in (1, 2)] == first
    assert prepare_background(sim.url, 3) == background and _bench_connections() == 5
    assert all(url.startswith("http://web.test/webhooks/tv/") for url, _ in first)
    with session_scope() as session:
        states = session.execute(select(Order.broker_id, Order.state).where(Order.broker_id.in_(background))).all()
    # Each background connection: a fill in its history and a resting order that reconciliation keeps checking.
    assert sorted(state for _, state in states) == ["filled"] * 3 + ["open"] * 3
