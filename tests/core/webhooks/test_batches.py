"""Alerts recorded a batch per transaction: each alert's order once, in the alerts' order, a killed or retried
batch placing none twice, and the alerts that depend on an earlier one's outcome recorded after it is placed."""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.exchanges.models import OcoRequest, OrderRequest
from core.exchanges.spot.base import Exchange
from core.infra.bus import WEBHOOKS_PENDING
from core.infra.db import new_session, session_scope, utcnow
from core.models import Order, User, WebhookAlert
from core.orders import placement, venue_call
from core.orders.venue_call import VenueCall
from core.webhooks.handoff import drain
from core.webhooks.processing import _LOCK_WEBHOOKS, process_alerts
from tests.core.webhooks.fixtures import sender
from tests.trading_support import make_trader


def _accepted(webhook_id: int, action: str, **payload) -> int:
    with session_scope() as session:
        return _accepted_in(session, webhook_id, action, **payload)


def _accepted_in(session: Session, webhook_id: int, action: str = "buy", **payload) -> int:
    alert = WebhookAlert(
        webhook_id=webhook_id,
        status="accepted",
        http_status=202,
        body="{}",
        headers={},
        action=action,
        symbol="BTCUSDT",
        received_at=utcnow(),
        payload={"action": action, "symbol": "BTCUSDT", "time": secrets.token_hex(4), **payload},
        idempotency_key=secrets.token_hex(16),
    )
    session.add(alert)
    session.flush()
    return alert.id


def _orders_of(alert_ids: list[int]) -> list[Order]:
    with new_session() as session:
        return list(
            session.scalars(
                select(Order)
                .where(Order.source == "webhook", Order.source_ref.in_([str(a) for a in alert_ids]))
                .order_by(Order.id)
            )
        )


def _trader_with_webhooks(make_user, sim, webhook_of, count: int, **settings):
    trader = make_trader(make_user, sim)
    with new_session() as session:
        user = session.get(User, trader.user_id)
    settings = {"size_mode": "quantity", "size_value": Decimal("0.001")} | settings
    return trader, [webhook_of(user, trader.broker_id, **settings)[0] for _ in range(count)]


def test_a_drained_batch_places_each_alerts_order_once_in_the_alerts_order(make_user, sim, webhook_of, orders_queue):
    trader, hooks = _trader_with_webhooks(make_user, sim, webhook_of, 2)
    alert_ids = [_accepted(hooks[i % 2], "buy" if i % 3 else "sell") for i in range(10)]
    orders_queue.rpush(WEBHOOKS_PENDING, *alert_ids)

    drain(orders_queue, lambda ids: process_alerts(ids, sender(), send_now=True), sender())

    orders = _orders_of(alert_ids)
    assert [int(o.source_ref) for o in orders] == alert_ids  # recorded in the alerts' order, one each
    assert [o.side for o in orders] == ["buy" if i % 3 else "sell" for i in range(10)]
    assert all(o.state == "filled" and len(trader.at_sim(o.id)) == 1 for o in orders)
    with new_session() as session:
        stored = session.scalars(select(WebhookAlert).where(WebhookAlert.id.in_(alert_ids))).all()
    assert all(a.processed_at is not None and a.order_ids == [int(_ref(orders, a.id))] for a in stored)
    assert process_alerts(alert_ids, sender(), send_now=True) == []  # a retried batch records nothing more


def _ref(orders: list[Order], alert_id: int) -> int:
    return next(o.id for o in orders if o.source_ref == str(alert_id))


def test_a_worker_killed_mid_batch_leaves_each_order_to_be_placed_once(
    make_user, sim, webhook_of, orders_queue, monkeypatch
):
    """Killed after the batch's commit, while sending: the answers heard are recorded, the other orders
    stay `sent`; the task's retry records nothing new and the sync finds or re-sends each one once."""
    trader, hooks = _trader_with_webhooks(make_user, sim, webhook_of, 2)
    alert_ids = [_accepted(hooks[i % 2], "buy") for i in range(6)]
    call = venue_call.call_venue
    calls: list[OrderRequest | OcoRequest] = []

    def killed_at_the_third(
        exchange: Exchange, request: OrderRequest | OcoRequest, deadline: float | None
    ) -> VenueCall:
        if len(calls) == 2:
            raise SystemExit("worker killed")  # not an Exception: nothing below catches it
        calls.append(request)
        return call(exchange, request, deadline)

    monkeypatch.setattr(venue_call, "call_venue", killed_at_the_third)
    with pytest.raises(SystemExit):
        process_alerts(alert_ids, sender(), send_now=True)
    monkeypatch.setattr(venue_call, "call_venue", call)

    orders = _orders_of(alert_ids)
    assert len(orders) == 6 and [o.state for o in orders] == ["filled"] * 2 + ["sent"] * 4
    assert process_alerts(alert_ids, sender(), send_now=True) == []  # the redelivered task: all recorded already
    for order in orders[2:]:
        placement.sync(order.id, resend_after=timedelta(0))  # what reconciliation does with a `sent` order
    assert all(trader.reload(o.id).state == "filled" and len(trader.at_sim(o.id)) == 1 for o in orders)


def test_a_close_behind_a_buy_of_its_webhook_waits_until_the_buy_is_placed(make_user, sim, webhook_of, orders_queue):
    """Alone, the close would sell the position the buy opened; in the buy's transaction it would find none."""
    trader, [hook, other] = _trader_with_webhooks(make_user, sim, webhook_of, 2)
    buy, other_buy, close = _accepted(hook, "buy"), _accepted(other, "buy"), _accepted(hook, "close")

    placed = process_alerts([buy, other_buy, close], sender(), send_now=True)

    orders = _orders_of([buy, other_buy, close])
    assert placed == [o.id for o in orders] and [o.side for o in orders] == ["buy", "buy", "sell"]
    assert 0 < orders[2].quantity <= orders[0].filled_quantity and trader.reload(orders[2].id).state == "filled"


def test_an_alert_locked_by_another_worker_is_left_to_it(make_user, sim, webhook_of, orders_queue):
    trader, [hook] = _trader_with_webhooks(make_user, sim, webhook_of, 1)
    taken, free = _accepted(hook, "buy"), _accepted(hook, "sell")
    with new_session() as other_worker:
        other_worker.execute(select(WebhookAlert).where(WebhookAlert.id == taken).with_for_update())

        placed = process_alerts([taken, free], sender(), send_now=True)

        other_worker.rollback()
    assert [int(o.source_ref) for o in _orders_of([taken, free])] == [free] and len(placed) == 1


def test_the_web_stores_a_webhooks_alert_while_a_worker_records_that_webhooks_batch(make_user, broker_of, webhook_of):
    """The worker's lock on the webhook serializes the batches of its alerts, not the web's INSERT of the next
    alert (whose foreign key check locks the webhook's row FOR KEY SHARE)."""
    user, _ = make_user()
    webhook_id, _ = webhook_of(user, broker_of(user))
    with new_session() as worker:
        assert [w.id for w in worker.scalars(_LOCK_WEBHOOKS, {"webhook_ids": [webhook_id]})] == [webhook_id]
        with session_scope() as web:
            web.execute(text("SET LOCAL lock_timeout = '2s'"))  # a blocked INSERT fails instead of waiting
            alert_id = _accepted_in(web, webhook_id)
        worker.rollback()
    with new_session() as session:
        assert session.get(WebhookAlert, alert_id) is not None
