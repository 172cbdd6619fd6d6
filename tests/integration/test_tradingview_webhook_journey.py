"""A TradingView alert, over real HTTP, becomes one filled order at the simulator; its replay does not;
`close` sells what the webhook bought. Real web server, real Celery worker, real simulator."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
import requests

from core.db import new_session
from core.exchanges.sim.server import start_in_thread
from core.models import Fill, Order, WebhookAlert
from tests.core.webhooks.fixtures import webhook_of  # noqa: F401
from tests.trading_support import make_trader


@pytest.fixture(scope="module")
def sim():
    handle = start_in_thread(seed=11)
    yield handle
    handle.stop()


def _wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def _orders_of(alert_id: int) -> list[Order]:
    with new_session() as session:
        orders = session.query(Order).filter(Order.source == "webhook", Order.source_ref == str(alert_id)).all()
        for order in orders:
            order.events  # noqa: B018 - loaded before the session closes
        return orders


def _filled(alert_id: int) -> Order | None:
    orders = _orders_of(alert_id)
    return orders[0] if orders and orders[0].state == "filled" else None


def test_tradingview_alert_becomes_one_filled_order_and_close_sells_it(
        live_server, celery_worker_process, make_user, sim, webhook_of, redis_client):  # noqa: F811
    trader = make_trader(make_user, sim)
    with new_session() as session:
        from core.models import User

        user = session.get(User, trader.user_id)
    _, token = webhook_of(user, trader.broker_id, size_mode="quantity", size_value=Decimal("0.01"))
    url = f"{live_server}/webhooks/tv/{token}"
    alert = json.dumps({"action": "buy", "ticker": "BINANCE:BTCUSDT", "contracts": "{{strategy.order.contracts}}",
                        "price": "60000", "interval": "1", "time": "2026-11-21T10:00:00Z"})

    started = time.monotonic()
    answer = requests.post(url, data=alert, headers={"Content-Type": "text/plain; charset=utf-8"}, timeout=5)
    answered_in = time.monotonic() - started
    assert answer.status_code == 202 and answered_in < 1.0
    alert_id = answer.json()["alert_id"]
    buy = _wait_for(lambda: _filled(alert_id))
    assert buy.quantity == Decimal("0.01") and buy.side == "buy"
    assert len(trader.at_sim(buy.id)) == 1

    replay = requests.post(url, data=alert, headers={"Content-Type": "text/plain"}, timeout=5)
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    time.sleep(1.0)
    assert len(_orders_of(alert_id)) == 1 and len(trader.at_sim(buy.id)) == 1
    assert _orders_of(replay.json()["alert_id"]) == []

    # The fills land in our ledger when the order is synced; close sells exactly what this webhook holds.
    def ledger_has_fill():
        with new_session() as session:
            return session.query(Fill).filter_by(order_id=buy.id).count()

    _wait_for(ledger_has_fill)
    close = requests.post(url, json={"action": "close", "ticker": "BTCUSDT", "time": "2026-11-21T10:05:00Z"},
                          timeout=5)
    assert close.status_code == 202
    sell = _wait_for(lambda: _filled(close.json()["alert_id"]))
    assert (sell.side, sell.filled_quantity) == ("sell", buy.filled_quantity)

    with new_session() as session:
        stored = session.get(WebhookAlert, alert_id)
    assert stored.order_ids == [buy.id] and stored.status == "accepted"
    acked = min(e.at for e in buy.events if e.to_state in ("open", "filled"))
    assert (acked - stored.received_at).total_seconds() < 5
