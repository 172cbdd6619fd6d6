# ruff: noqa: F811  (the webhook_of fixture is imported and taken as a parameter)
"""A burst of webhook alerts with busy background reconciliation loses nothing: the venue's request
budget is nearly spent and background work keeps asking for it, yet every alert becomes exactly one
filled order, because orders wait their turn (in arrival order) and background yields to them.
Real web server, real Celery worker, real simulator, real Redis-shared limiter."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import requests
from sqlalchemy import func, select

from core.exchanges.errors import ExchangeError
from core.exchanges.ratelimit import RequestClass, weight_spent
from core.infra.bus import get_redis, ratelimit_budget
from core.infra.db import new_session
from core.models import Order, User, WebhookAlert
from core.orders import placement, reconcile
from tests.core.webhooks.fixtures import webhook_of  # noqa: F401
from tests.trading_support import make_trader

VENUE_BUDGET = ratelimit_budget("sim", 6000, 60000)
ALERTS = 30


def _spend_budget_until(seconds: float) -> None:
    """The venue's weight budget all spent by earlier requests, none of which leaves the window before
    `seconds` from now: longer than any background call may wait (max_wait_s, 10 s) and than the old
    limiter let an order wait before refusing it."""
    client = get_redis()
    stamp = int((time.time() + seconds - 60) * 1000)
    client.delete(VENUE_BUDGET)
    client.rpush(VENUE_BUDGET, *[stamp] * 6000)
    client.pexpire(VENUE_BUDGET, 60_000)


def _orders_by_alert(alert_ids: list[int]) -> dict[int, list[str]]:
    with new_session() as session:
        rows = session.execute(
            select(Order.source_ref, Order.state).where(
                Order.source == "webhook", Order.source_ref.in_([str(a) for a in alert_ids])
            )
        ).all()
    found: dict[int, list[str]] = {alert_id: [] for alert_id in alert_ids}
    for ref, state in rows:
        found[int(ref)].append(state)
    return found


def test_a_burst_of_webhook_alerts_with_busy_background_reconciliation_loses_nothing(
    live_server, celery_worker_process, make_user, sim, webhook_of, redis_client
):
    trader = make_trader(make_user, sim, {"USDT": "10000000", "BTC": "100"})
    with new_session() as session:
        user = session.get(User, trader.user_id)
    _, token = webhook_of(
        user, trader.broker_id, size_mode="quantity", size_value=Decimal("0.001"), rate_limit_per_minute=10_000
    )
    url = f"{live_server}/webhooks/tv/{token}"

    # Other connections on the same venue, each with a resting order and a fill to reconcile.
    others = [make_trader(make_user, sim) for _ in range(3)]
    for other in others:
        placement.place(other.order(type="limit", price=Decimal("1000")))
        placement.place(other.order())
    stop = threading.Event()

    def reconcile_without_pause(broker_id: int) -> None:
        while not stop.is_set():
            with contextlib.suppress(ExchangeError):
                reconcile.reconcile_broker(broker_id, lambda _order_id: False, full_sweep=True)

    background = [threading.Thread(target=reconcile_without_pause, args=(o.broker_id,), daemon=True) for o in others]
    background_before = weight_spent(get_redis(), "sim")[RequestClass.BACKGROUND]
    for thread in background:
        thread.start()
    _spend_budget_until(12.0)

    start = datetime.now(UTC)

    def send(index: int) -> int:
        body = json.dumps(
            {
                "action": "buy" if index % 2 == 0 else "sell",
                "ticker": "BTCUSDT",
                "price": "60000",
                "interval": "1",
                "time": (start + timedelta(milliseconds=index)).isoformat().replace("+00:00", "Z"),
            }
        )
        answer = requests.post(url, data=body, headers={"Content-Type": "text/plain"}, timeout=10)
        assert answer.status_code == 202, answer.text
        return answer.json()["alert_id"]

    try:
        sent_at = time.monotonic()
        with ThreadPoolExecutor(max_workers=10) as pool:
            alert_ids = list(pool.map(send, range(ALERTS)))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = _orders_by_alert(alert_ids)
            if all(
                states and all(s in ("filled", "rejected", "expired", "cancelled") for s in states)
                for states in found.values()
            ):
                break
            time.sleep(0.25)
    finally:
        stop.set()
        for thread in background:
            thread.join(timeout=15)
        redis_client.delete(VENUE_BUDGET)

    assert {alert_id: states for alert_id, states in found.items() if states != ["filled"]} == {}
    assert time.monotonic() - sent_at > 10  # they waited longer than the old limiter allowed before refusing
    with new_session() as session:
        accepted = session.scalar(
            select(func.count())
            .select_from(WebhookAlert)
            .where(WebhookAlert.id.in_(alert_ids), WebhookAlert.status == "accepted")
        )
    assert accepted == ALERTS
    assert weight_spent(get_redis(), "sim")[RequestClass.BACKGROUND] > background_before  # it was busy
