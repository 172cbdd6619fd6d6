"""Alerts into orders: exactly once, close sells the webhook's own position, cancel its open orders."""

from __future__ import annotations

import json
import secrets
from decimal import Decimal

from sqlalchemy import select

from core import tasks
from core.infra.db import new_session, session_scope, utcnow
from core.ledger.positions import net_position
from core.models import Fill, Order, User, WebhookAlert
from core.webhooks.processing import process_alert, process_alerts, unprocessed_alert_ids
from tests.core.webhooks.fixtures import sender
from tests.trading_support import make_trader


def _accepted(webhook_id: int, action: str, symbol: str = "BTCUSDT", seconds_ago: int = 0, **payload) -> int:
    from datetime import timedelta

    with session_scope() as session:
        alert = WebhookAlert(
            webhook_id=webhook_id,
            status="accepted",
            http_status=202,
            body="{}",
            headers={},
            action=action,
            symbol=symbol,
            received_at=utcnow() - timedelta(seconds=seconds_ago),
            payload={"action": action, "symbol": symbol, **payload},
            idempotency_key=secrets.token_hex(16),
        )
        session.add(alert)
        session.flush()
        return alert.id


def _user(trader):
    with new_session() as session:
        return session.get(User, trader.user_id)


def _fill(order_id: int, side: str, quantity: str, fee: str = "0", fee_asset: str | None = None) -> None:
    with session_scope() as session:
        order = session.get(Order, order_id)
        session.add(
            Fill(
                order_id=order.id,
                user_id=order.user_id,
                broker_id=order.broker_id,
                symbol=order.symbol,
                side=side,
                venue_trade_id=secrets.token_hex(6),
                price=Decimal(100),
                quantity=Decimal(quantity),
                fee=Decimal(fee),
                fee_asset=fee_asset,
                traded_at=utcnow(),
            )
        )


def test_an_alert_is_turned_into_one_order_however_often_it_is_processed(
    make_user, broker_of, webhook_of, orders_queue
):
    user, _ = make_user()
    webhook_id, _ = webhook_of(user, broker_of(user), size_mode="quantity", size_value=Decimal("0.01"))
    alert_id = _accepted(webhook_id, "buy")
    app = sender()
    [order_id] = process_alert(alert_id, app)
    assert process_alert(alert_id, app) == []
    with new_session() as session:
        orders = session.scalars(
            select(Order).where(Order.source == "webhook", Order.source_ref == str(alert_id))
        ).all()
        alert = session.get(WebhookAlert, alert_id)
    assert [o.id for o in orders] == [order_id] and orders[0].quantity == Decimal("0.01")
    assert alert.order_ids == [order_id] and "recorded" in alert.process_result
    # The placement went to the real `orders` queue in Redis.
    assert any(
        json.loads(raw)["headers"]["task"] == tasks.PLACE_ORDER
        and json.loads(raw)["headers"]["argsrepr"] == f"[{order_id}]"
        for raw in orders_queue.lrange("orders", 0, -1)
    )


def test_close_sells_the_webhooks_own_net_position(make_user, broker_of, webhook_of):
    user, _ = make_user()
    broker_id = broker_of(user)
    webhook_id, _ = webhook_of(user, broker_id)
    other_id, _ = webhook_of(user, broker_id)
    app = sender()
    [bought] = process_alert(_accepted(webhook_id, "buy"), app)
    [sold] = process_alert(_accepted(webhook_id, "sell"), app)
    [foreign] = process_alert(_accepted(other_id, "buy"), app)
    _fill(bought, "buy", "0.3")
    _fill(sold, "sell", "0.1")
    _fill(foreign, "buy", "5")
    with new_session() as session:
        from core.models import Webhook

        assert net_position(session, session.get(Webhook, webhook_id), "BTCUSDT") == Decimal("0.2")
    [closing] = process_alert(_accepted(webhook_id, "close"), app)
    with new_session() as session:
        order = session.get(Order, closing)
    assert (order.side, order.quantity, order.type) == ("sell", Decimal("0.2"), "market")


def test_selling_the_ordered_quantity_after_a_base_fee_leaves_the_webhook_flat_not_short(
    make_user, broker_of, webhook_of
):
    """Issue 19: a buy of 0.001 BTC whose fee the venue took in BTC, then a sell of 0.001, held -0.000001."""
    user, _ = make_user()
    webhook_id, _ = webhook_of(user, broker_of(user))
    app = sender()
    [bought] = process_alert(_accepted(webhook_id, "buy"), app)
    [sold] = process_alert(_accepted(webhook_id, "sell"), app)
    _fill(bought, "buy", "0.001", fee="0.000001", fee_asset="BTC")
    with new_session() as session:
        from core.models import Webhook

        assert net_position(session, session.get(Webhook, webhook_id), "BTCUSDT") == Decimal("0.000999")
    _fill(sold, "sell", "0.001")
    with new_session() as session:
        assert net_position(session, session.get(Webhook, webhook_id), "BTCUSDT") == 0
    assert process_alert(_accepted(webhook_id, "close"), app) == []  # nothing to close, nothing to buy back


def test_close_without_position_records_why_no_order_was_made(make_user, broker_of, webhook_of):
    user, _ = make_user()
    webhook_id, _ = webhook_of(user, broker_of(user))
    alert_id = _accepted(webhook_id, "close")
    assert process_alert(alert_id, sender()) == []
    with new_session() as session:
        alert = session.get(WebhookAlert, alert_id)
    assert alert.processed_at is not None and alert.process_result == "no order: no BTCUSDT position to close"


def test_cancel_cancels_unsent_orders_and_asks_the_venue_for_the_others(make_user, broker_of, webhook_of, orders_queue):
    user, _ = make_user()
    webhook_id, _ = webhook_of(user, broker_of(user))
    app = sender()
    [unsent] = process_alert(_accepted(webhook_id, "buy"), app)
    [resting] = process_alert(_accepted(webhook_id, "buy", time="x"), app)
    with session_scope() as session:
        order = session.get(Order, resting)
        order.state = "open"
    orders_queue.delete("orders")
    process_alert(_accepted(webhook_id, "cancel"), app)
    with new_session() as session:
        assert session.get(Order, unsent).state == "cancelled"
        assert session.get(Order, resting).state == "open"  # the worker cancels it at the venue
    queued = [json.loads(raw)["headers"] for raw in orders_queue.lrange("orders", 0, -1)]
    ours = {f"[{unsent}]", f"[{resting}]", f"({unsent},)", f"({resting},)"}  # a worker may queue others' tasks
    assert [(t["task"], t["argsrepr"]) for t in queued if t["argsrepr"] in ours] == [
        (tasks.CANCEL_ORDER, f"[{resting}]")
    ]


def test_the_sweep_finds_only_old_unprocessed_accepted_alerts(make_user, broker_of, webhook_of):
    user, _ = make_user()
    webhook_id, _ = webhook_of(user, broker_of(user))
    stale = _accepted(webhook_id, "buy", seconds_ago=60)
    fresh = _accepted(webhook_id, "buy", seconds_ago=0)
    with new_session() as session:
        found = unprocessed_alert_ids(session)
    assert stale in found and fresh not in found
    process_alert(stale, sender())
    with new_session() as session:
        assert stale not in unprocessed_alert_ids(session)


def test_a_worker_records_sends_and_fills_the_alerts_order_in_one_step(make_user, sim, webhook_of, orders_queue):
    trader = make_trader(make_user, sim)
    webhook_id, _ = webhook_of(_user(trader), trader.broker_id, size_mode="quantity", size_value=Decimal("0.01"))
    # A cold adapter's order is placed after the commit (markets loaded then), a warm one's is moved
    # to `sent` in the alert's own transaction: the first alert may meet either, the second a warm one.
    for time in ("first", "second"):
        alert_id = _accepted(webhook_id, "buy", time=time)

        [order_id] = process_alert(alert_id, sender(), send_now=True)

        order = trader.reload(order_id)
        assert order.state == "filled" and [e.to_state for e in order.events] == ["sent", "filled"]
        assert sum(f.quantity for f in order.fills) == Decimal("0.01")
        assert len(trader.at_sim(order_id)) == 1 and orders_queue.llen("orders") == 0  # no second trip
        assert process_alert(alert_id, sender(), send_now=True) == [] and len(trader.at_sim(order_id)) == 1


def test_a_batch_of_alerts_records_each_orders_fills_from_the_venues_answers(make_user, sim, webhook_of, orders_queue):
    trader = make_trader(make_user, sim)
    webhooks = [
        webhook_of(_user(trader), trader.broker_id, size_mode="quantity", size_value=Decimal(size))[0]
        for size in ("0.01", "0.02")
    ]
    process_alert(_accepted(webhooks[0], "buy", time="warm-up"), sender(), send_now=True)
    alert_ids = [_accepted(webhook_id, "buy", time="batch") for webhook_id in webhooks]

    order_ids = process_alerts(alert_ids, sender(), send_now=True)

    orders = [trader.reload(order_id) for order_id in order_ids]
    assert [order.state for order in orders] == ["filled", "filled"]
    assert [sum(f.quantity for f in order.fills) for order in orders] == [Decimal("0.01"), Decimal("0.02")]
    assert all(fill.order_id == order.id for order in orders for fill in order.fills)


def test_a_venue_down_leaves_the_alerts_order_new_for_the_queue(make_user, sim, webhook_of, orders_queue):
    trader = make_trader(make_user, sim)
    trader.point_at("http://127.0.0.1:1")  # markets cannot be loaded
    webhook_id, _ = webhook_of(_user(trader), trader.broker_id, size_mode="quantity", size_value=Decimal("0.01"))

    [order_id] = process_alert(_accepted(webhook_id, "buy"), sender(), send_now=True)

    assert trader.reload(order_id).state == "new"
    queued = [json.loads(raw)["headers"] for raw in orders_queue.lrange("orders", 0, -1)]
    assert [(t["task"], t["argsrepr"]) for t in queued] == [(tasks.PLACE_ORDER, f"[{order_id}]")]


def test_a_stored_alert_the_database_cannot_record_as_an_order_says_so_without_sql(
    make_user, broker_of, webhook_of, orders_queue
):
    """The receiver bounds sizes; should an out-of-range size reach processing anyway (an alert stored before
    the bound), the trader's log reads a sentence, never the SQL and parameters of the refused INSERT."""
    user, _ = make_user()
    webhook_id, _ = webhook_of(user, broker_of(user))
    alert_id = _accepted(webhook_id, "buy", quantity="1e30")
    assert process_alert(alert_id, sender()) == []
    with new_session() as session:
        alert = session.get(WebhookAlert, alert_id)
        assert (
            session.scalars(select(Order).where(Order.source == "webhook", Order.source_ref == str(alert_id))).all()
            == []
        )
    assert alert.processed_at is not None and alert.order_ids == []
    assert alert.process_result == (
        "no order: the order could not be recorded (a database error; the worker log has the details)"
    )
