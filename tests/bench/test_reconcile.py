"""`aristobot bench reconcile` against a real simulator: its idle connections are created once and
reused, and they cost the venue a sweep per SWEEP_EVERY, nothing between sweeps; the busy connection's
resting orders are placed once and checked with one listing a pass."""

from __future__ import annotations

from sqlalchemy import func, select

from bench.reconcile import BENCH_USER, run
from core.infra.db import session_scope
from core.models import BrokerConnection, User


def _connections() -> int:
    with session_scope() as session:
        return session.scalar(
            select(func.count()).select_from(BrokerConnection).join(User).where(User.username == BENCH_USER)
        )


def test_idle_connections_cost_a_sweep_per_interval_and_are_reused_by_the_next_run(infra, sim, redis_client):
    first = run(sim.url, 3, busy_orders=5)
    assert (first.connections, first.reconciled_on_sweep, first.reconciled_between_sweeps) == (3, 3, 0)
    assert (first.open_orders_on_busy_connection, first.startup_connections) == (5, 4)
    assert first.weight_500_orders_pass == 6 + 20  # one listing of the open orders and the trades of its symbol
    assert first.weight_per_sweep >= 3 * 20 and first.weight_per_pass_between_sweeps == 0
    assert first.weight_per_min == first.weight_per_sweep / 10  # one sweep per 10 minutes
    assert first.weight_per_min_if_swept_every_pass == first.weight_per_sweep * 2
    again = run(sim.url, 3, busy_orders=5)
    assert _connections() == 4 and again.reconciled_on_sweep == 3 and again.open_orders_on_busy_connection == 5
