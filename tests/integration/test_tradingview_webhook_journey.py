# ruff: noqa: F811  (the webhook_of fixture is imported and taken as a parameter)
"""A TradingView alert, over real HTTP, becomes one filled order at the simulator; its replay does not;
`close` sells what the webhook bought. Real web server, real Celery worker, real simulator."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import requests

from core import tasks
from core.infra.db import new_session
from core.models import Fill, Order, WebhookAlert
from tests.core.webhooks.fixtures import webhook_of  # noqa: F401
from tests.trading_support import make_trader


def now() -> str:
    """An alert time as TradingView's {{timenow}} writes it: alerts older than the freshness window are stale."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


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
    live_server, celery_worker_process, make_user, sim, webhook_of, redis_client
):
    trader = make_trader(make_user, sim)
    with new_session() as session:
        from core.models import User

        user = session.get(User, trader.user_id)
    _, token = webhook_of(user, trader.broker_id, size_mode="quantity", size_value=Decimal("0.01"))
    url = f"{live_server}/webhooks/tv/{token}"
    alert = json.dumps(
        {
            "action": "buy",
            "ticker": "BINANCE:BTCUSDT",
            "contracts": "{{strategy.order.contracts}}",
            "price": "60000",
            "interval": "1",
            "time": now(),
        }
    )

    answer = requests.post(url, data=alert, headers={"Content-Type": "text/plain; charset=utf-8"}, timeout=5)
    assert answer.status_code == 202  # answered before the order is worked (speed: `aristobot bench webhook`)
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
    close = requests.post(url, json={"action": "close", "ticker": "BTCUSDT", "time": now()}, timeout=5)
    assert close.status_code == 202
    sell = _wait_for(lambda: _filled(close.json()["alert_id"]))
    with new_session() as session:
        fee_in_btc = sum(f.fee for f in session.query(Fill).filter_by(order_id=buy.id) if f.fee_asset == "BTC")
    assert fee_in_btc > 0  # the venue took its commission out of the bought BTC: that part is not sold
    assert (sell.side, sell.filled_quantity) == ("sell", buy.filled_quantity - fee_in_btc)

    with new_session() as session:
        stored = session.get(WebhookAlert, alert_id)
    assert stored.order_ids == [buy.id] and stored.status == "accepted"
    acked = min(e.at for e in buy.events if e.to_state in ("open", "filled"))
    assert (acked - stored.received_at).total_seconds() < 5


def _protection_of(entry_id: int) -> Order | None:
    with new_session() as session:
        order = session.query(Order).filter(Order.oco_group == f"protect:{entry_id}").one_or_none()
        if order is not None:
            order.events  # noqa: B018 - loaded before the session closes
        return order


def _sync(order_id: int) -> dict:
    from workers.celery_app import app

    return tasks.send_sync_order(order_id, app=app).get(timeout=30)


def test_alert_with_stop_loss_and_take_profit_protects_the_fill_with_an_oco_that_exits_at_the_take_profit(
    live_server, celery_worker_process, make_user, sim, webhook_of, redis_client
):
    trader = make_trader(make_user, sim)
    with new_session() as session:
        from core.models import User

        user = session.get(User, trader.user_id)
    _, token = webhook_of(user, trader.broker_id, size_mode="quantity", size_value=Decimal("0.01"))
    price = sim.state.last_price("BTCUSDT")
    take_profit, stop_loss = (
        (price * Decimal("1.2")).quantize(Decimal("0.01")),
        (price * Decimal("0.8")).quantize(Decimal("0.01")),
    )
    answer = requests.post(
        f"{live_server}/webhooks/tv/{token}",
        timeout=5,
        json={
            "action": "buy",
            "ticker": "BTCUSDT",
            "price": str(price),
            "tp": str(take_profit),
            "sl": str(stop_loss),
            "time": now(),
        },
    )
    assert answer.status_code == 202, answer.text
    alert_id = answer.json()["alert_id"]
    entry = _wait_for(lambda: _filled(alert_id))

    # The fill is protected once, for what the buy left in the account (the fee was taken in BTC).
    oco = _wait_for(lambda: (o := _protection_of(entry.id)) and o.state == "open" and o)
    with new_session() as session:
        fee = sum(f.fee for f in session.query(Fill).filter_by(order_id=entry.id))
    assert (oco.type, oco.side, oco.source, oco.source_ref) == ("oco", "sell", "webhook", str(alert_id))
    assert oco.quantity == entry.filled_quantity - fee and fee > 0
    assert (oco.price, oco.stop_price) == (take_profit, stop_loss)
    legs = trader.at_sim(oco.id)
    assert sorted(leg.type.value for leg in legs) == ["LIMIT_MAKER", "STOP_LOSS"] and all(leg.is_open for leg in legs)
    with new_session() as session:
        assert session.get(WebhookAlert, alert_id).order_ids == [entry.id, oco.id]

    # The market trades through the take-profit: the venue fills it and cancels the stop-loss.
    sim.inject_print("BTCUSDT", take_profit + 1)
    assert _sync(oco.id)["state"] == "filled"
    legs = {leg.type.value: leg for leg in trader.at_sim(oco.id)}
    assert legs["LIMIT_MAKER"].status.value == "FILLED" and legs["STOP_LOSS"].status.value == "EXPIRED"
    with new_session() as session:
        fills = session.query(Fill).filter_by(order_id=oco.id).all()
        stored = session.get(Order, oco.id)
    assert stored.state == "filled" and stored.filled_quantity == oco.quantity
    assert sum(f.quantity for f in fills) == oco.quantity and all(f.price >= take_profit for f in fills)
    # Seeing the fills again (another sync, the sweep) never protects twice.
    _sync(entry.id)
    from workers.celery_app import app

    tasks.send_sweep_unprotected_entries(app=app).get(timeout=30)
    with new_session() as session:
        assert session.query(Order).filter(Order.oco_group == f"protect:{entry.id}").count() == 1


def test_close_cancels_the_resting_stop_loss_before_selling(
    live_server, celery_worker_process, make_user, sim, webhook_of, redis_client
):
    trader = make_trader(make_user, sim, balances={"USDT": "100000"})  # no BTC but what the webhook buys
    with new_session() as session:
        from core.models import User

        user = session.get(User, trader.user_id)
    _, token = webhook_of(user, trader.broker_id, size_mode="quantity", size_value=Decimal("0.01"))
    url = f"{live_server}/webhooks/tv/{token}"
    stop_loss = (sim.state.last_price("BTCUSDT") * Decimal("0.7")).quantize(Decimal("0.01"))
    buy = requests.post(
        url, timeout=5, json={"action": "buy", "ticker": "BTCUSDT", "stop_loss": str(stop_loss), "time": now()}
    )
    entry = _wait_for(lambda: _filled(buy.json()["alert_id"]))
    stop = _wait_for(lambda: (o := _protection_of(entry.id)) and o.state == "open" and o)
    assert (stop.type, stop.side, stop.stop_price) == ("stop_loss", "sell", stop_loss)

    close = requests.post(url, timeout=5, json={"action": "close", "ticker": "BTCUSDT", "time": now()})
    assert close.status_code == 202
    sell = _wait_for(lambda: _filled(close.json()["alert_id"]))
    assert _protection_of(entry.id).state == "cancelled"
    assert not any(leg.is_open for leg in trader.at_sim(stop.id))
    # Everything the buy left in the account was sold, and nothing else.
    assert sell.filled_quantity == stop.quantity
    with new_session() as session:
        assert "recorded" in session.get(WebhookAlert, close.json()["alert_id"]).process_result
