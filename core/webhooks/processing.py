"""Turning a stored, accepted alert into orders, exactly once, and the sweep that repairs missed hand-offs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict, cast

from sqlalchemy import BindParameter, Select, Table, bindparam, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core import tasks
from core.exchanges.spot.registry import make_exchange
from core.halt import trading_halted
from core.infra.config import get_settings
from core.infra.db import session_scope, utcnow
from core.ledger.positions import net_position
from core.models import BrokerConnection, Order, SymbolRule, Webhook, WebhookAlert
from core.orders import batch_send, placement
from core.orders.states import OrderState
from core.orders.submit import OrderIntent, enqueue_placement, record_order
from core.webhooks.positions import webhook_orders
from core.webhooks.protection import (
    asks_for_exits,
    note_needs_no_protection,
    open_protection_ids,
    protection_orders,
)

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

OPEN_STATES = (
    OrderState.SENT.value,
    OrderState.OPEN.value,
    OrderState.PARTIALLY_FILLED.value,
    OrderState.UNKNOWN.value,
)
SWEEP_AFTER = timedelta(seconds=5)  # the web process normally processes within milliseconds
# Built once, like every statement on the per-alert path: building and keying them cost more than running them.
# The alerts' columns processing reads (not the stored request's body and headers), their rows locked.
_LOCK_ALERTS = (
    select(WebhookAlert.id, WebhookAlert.webhook_id, WebhookAlert.payload)
    .where(
        WebhookAlert.id.in_(bindparam("alert_ids", expanding=True)),
        WebhookAlert.status == "accepted",
        WebhookAlert.processed_at.is_(None),
    )
    .order_by(WebhookAlert.id)
    .with_for_update(skip_locked=True)
)
# Executed with the processed_at, process_result and order_ids of each alert (they make its SET clause).
_MARK_PROCESSED = update(cast(Table, WebhookAlert.__table__)).where(
    WebhookAlert.__table__.c.id == bindparam("alert_id")
)
# The ids of the orders a batch may record (one per alert; an alert that records none leaves a gap): an
# order whose id is known needs no INSERT of its own before its client order id is set, only the batch's.
_NEXT_ORDER_IDS = text("SELECT nextval(pg_get_serial_sequence('orders', 'id')) FROM generate_series(1, :count)")
_BROKERS = select(BrokerConnection).where(BrokerConnection.id.in_(bindparam("broker_ids", expanding=True)))
# FOR NO KEY UPDATE: one batch of a webhook's alerts at a time, while the web goes on storing its new
# alerts (their foreign key takes a KEY SHARE lock on the webhook's row, which FOR UPDATE would block).
_LOCK_WEBHOOKS = (
    select(Webhook)
    .where(Webhook.id.in_(bindparam("webhook_ids", expanding=True)))
    .order_by(Webhook.id)
    .with_for_update(key_share=True)
)


class _Alert(NamedTuple):
    """An accepted alert, as processing reads it."""

    id: int
    webhook_id: int
    payload: dict[str, Any] | None


class Size(TypedDict, total=False):
    """How much an alert's order trades: a base quantity, or a quote amount to spend (a buy)."""

    quantity: Decimal
    quote_quantity: Decimal


class NothingToDo(Exception):
    """The alert is valid but there is nothing to trade (e.g. close with no position)."""


class ProtectionStillOpen(Exception):
    """A close or a trade the other way must wait: the position's stop-loss / take-profit still rests at
    the venue (and locks it)."""

    def __init__(self, order_ids: list[int]) -> None:
        super().__init__(f"cancelling protective order(s) #{', #'.join(map(str, order_ids))} before trading")
        self.order_ids = order_ids


def protection_in_the_way(webhook_id: int | BindParameter[int], action: str | BindParameter[str]) -> Select[Order]:
    """The webhook's orders among which the protection to cancel before `action` is: all of them for a
    close; for a buy or sell, those on the same side (the exits of the position it leaves or reverses).
    A trade the way the protection would exit must not leave it resting: it would later trade what the
    webhook no longer holds, and on spot it keeps the asset locked, so the new order would be refused."""
    orders = webhook_orders(webhook_id)
    return orders if isinstance(action, str) and action == "close" else orders.where(Order.side == action)


def _local_protection_query(close: bool) -> Select[int, str]:
    """The protection in the way of an alert (a close, or a trade whose side is bound as `action`), not yet
    final: built once per kind, the webhook, broker and symbol bound at each alert."""
    in_the_way = protection_in_the_way(bindparam("webhook_id"), "close" if close else bindparam("action"))
    return (
        in_the_way.where(
            *protection_orders(bindparam("broker_id"), bindparam("symbol")),
            Order.state.in_((OrderState.NEW.value, *OPEN_STATES)),
        )
        .with_only_columns(Order.id, Order.state)
        .order_by(Order.id)
    )


_LOCAL_PROTECTION = {close: _local_protection_query(close) for close in (True, False)}


def _cancel_local_protection(session: Session, webhook: Webhook, alert: _Alert, symbol: str, action: str) -> list[int]:
    """Cancel the never-sent protective orders in the alert's way here; return those resting at the venue."""
    orders = session.execute(
        _LOCAL_PROTECTION[action == "close"],
        {"webhook_id": webhook.id, "action": action, "broker_id": webhook.broker_id, "symbol": symbol},
    ).all()
    resting = []
    for order_id, state in orders:
        if state == OrderState.NEW.value:
            order = session.execute(select(Order).where(Order.id == order_id).with_for_update()).scalar_one()
            state = order.state  # a worker may have sent it meanwhile
            if state == OrderState.NEW.value:
                order.move_to(OrderState.CANCELLED, f"webhook_{action}", {"alert_id": alert.id})
        if state in OPEN_STATES:
            resting.append(order_id)
    return resting


def _percent_size(session: Session, webhook: Webhook, symbol: str, side: str) -> Size:
    """% of the free balance: of the quote asset for a buy, of the base asset for a sell."""
    rule = session.execute(
        select(SymbolRule).where(SymbolRule.broker_id == webhook.broker_id, SymbolRule.symbol == symbol)
    ).scalar()
    if rule is None:
        raise NothingToDo(f"load the markets of the broker to size {symbol} as a % of the balance")
    broker = session.get_one(BrokerConnection, webhook.broker_id)
    base_url = broker.base_url or (get_settings().sim_url if broker.venue == "sim" else None)
    exchange = make_exchange(broker.venue, base_url=base_url, **broker.credentials())
    try:
        balances = exchange.balances()
    finally:
        exchange.close()
    asset = rule.quote if side == "buy" else rule.base
    free = balances[asset].free if asset in balances else Decimal(0)
    amount = free * webhook.size_value / Decimal(100)
    if amount <= 0:
        raise NothingToDo(f"no free {asset} to size {webhook.size_value}% of")
    return {"quote_quantity": amount} if side == "buy" else {"quantity": amount}


def _size(session: Session, webhook: Webhook, payload: dict[str, Any], side: str) -> Size:
    if payload.get("quantity"):
        return {"quantity": Decimal(payload["quantity"])}
    if webhook.size_mode == "quantity":
        return {"quantity": webhook.size_value}
    if webhook.size_mode == "quote":
        return {"quote_quantity": webhook.size_value}
    return _percent_size(session, webhook, payload["symbol"], side)


def _orders_for(session: Session, webhook: Webhook, alert: _Alert, order_id: int) -> tuple[list[Order], list[int], str]:
    """(orders to place, ids of the orders to cancel, result text); a new order gets the id `order_id`."""
    payload = alert.payload or {}
    symbol, action = payload["symbol"], payload["action"]
    if action == "cancel":
        open_orders = list(
            session.scalars(
                webhook_orders(webhook.id).where(
                    Order.symbol == symbol, Order.state.in_((OrderState.NEW.value, *OPEN_STATES))
                )
            )
        )
        to_cancel = []
        for order in open_orders:
            if order.state == OrderState.NEW.value:  # never sent: cancelled here, nothing to ask the venue
                order.move_to(OrderState.CANCELLED, "webhook_cancel", {"alert_id": alert.id})
            else:
                to_cancel.append(order.id)
        return [], to_cancel, f"cancel requested for {len(open_orders)} open order(s)"
    resting = _cancel_local_protection(session, webhook, alert, symbol, action)
    if resting:
        raise ProtectionStillOpen(resting)
    if action == "close":
        position = net_position(session, webhook, symbol)
        if position <= 0:
            raise NothingToDo(f"no {symbol} position to close")
        size, side = Size(quantity=position), "sell"
    else:
        size, side = _size(session, webhook, payload, action), action
    intent = OrderIntent(
        broker_id=webhook.broker_id,
        symbol=symbol,
        side=side,
        type="market",
        source="webhook",
        source_ref=str(alert.id),
        **size,
    )
    order = record_order(session, webhook.user_id, intent, order_id=order_id)
    return [order], [], f"{side} order #{order.id} recorded"


def process_alert(alert_id: int, celery_app: Celery, *, defer_trade: bool = True, send_now: bool = False) -> list[int]:
    """One alert: see process_alerts."""
    return process_alerts([alert_id], celery_app, defer_trade=defer_trade, send_now=send_now)


class _Recorded(NamedTuple):
    """What one alert's recording decided, acted on after the batch's commit."""

    alert_id: int
    waits_for_cancel: bool
    to_place: list[int]
    to_cancel: list[int]
    result: str


def process_alerts(
    alert_ids: list[int], celery_app: Celery, *, defer_trade: bool = True, send_now: bool = False
) -> list[int]:
    """Record the alerts' orders once, in one transaction (the alert rows are locked, an alert already
    processed or locked by another worker is left alone, their webhooks are locked in id order, the
    alerts are taken in id order, each in a savepoint of its own), then place them: with `send_now` (a
    worker, already on the `orders` queue) they are moved to `sent` in the same transaction and sent
    right after its commit, else handed to the `orders` queue. Returns the ids of the orders recorded.

    A close (or a trade the other way) whose position is still protected at the venue is left
    unprocessed: the protective orders are cancelled by `trade_after_cancelling` on a worker (sent here
    unless `defer_trade` is False), then the alert is processed again with the position that remains;
    the sweep retries it if need be."""
    placed: list[int] = []
    while alert_ids:
        recorded, to_send, alert_ids = _record_part(alert_ids, send_now)
        _send_prepared(to_send, celery_app)
        sent = {order.order_id for order in to_send}
        for outcome in recorded:
            placed += _act_on(outcome, sent, celery_app, defer_trade=defer_trade, send_now=send_now)
    return placed


def _send_prepared(prepared: list[placement.PreparedOrder], celery_app: Celery) -> None:
    """The orders moved to `sent` with their alerts, sent after the commit; whatever fails goes to the
    `orders` queue (placement is idempotent by order id: one already answered is left as it is)."""
    if not prepared:
        return
    try:
        batch_send.send_all(prepared)
    except Exception as exc:  # noqa: BLE001 - the queue syncs each order with the venue by its client order id
        log.warning(
            "webhook_place_deferred", extra={"order_ids": [p.order_id for p in prepared], "error": str(exc)[:200]}
        )
        for order in prepared:
            enqueue_placement(celery_app, order.order_id)  # False = Redis down: the orders reconciliation re-enqueues


def _record_part(
    alert_ids: list[int], send_now: bool
) -> tuple[list[_Recorded], list[placement.PreparedOrder], list[int]]:
    """Record the first alerts of `alert_ids` that may share a transaction (see _shared_part_end);
    returns what was recorded, the orders prepared for sending, and the alerts left for the next one."""
    to_send: list[placement.PreparedOrder] = []
    with session_scope() as session:
        alerts = [_Alert(*row) for row in session.execute(_LOCK_ALERTS, {"alert_ids": alert_ids})]
        if not alerts:
            return [], [], []
        # One alert of a webhook at a time: a close computed while a reverse is being recorded would race.
        webhook_ids = sorted({alert.webhook_id for alert in alerts})
        webhooks = {webhook.id: webhook for webhook in session.scalars(_LOCK_WEBHOOKS, {"webhook_ids": webhook_ids})}
        # An accepted alert has its webhook (a deleted webhook's alerts are deleted with it).
        of_webhooks = [(alert, webhooks[alert.webhook_id]) for alert in alerts if alert.webhook_id in webhooks]
        # Held for the transaction: recording and preparing the orders find them in the session (which
        # only keeps objects someone references) instead of loading them again per order.
        _held_brokers = session.scalars(
            _BROKERS, {"broker_ids": sorted({w.broker_id for w in webhooks.values()})}
        ).all()
        end = _shared_part_end(of_webhooks)
        halted = trading_halted(session)  # read once for the orders of this transaction
        order_ids = session.scalars(_NEXT_ORDER_IDS, {"count": end}).all()
        recorded = [
            _record(session, webhook, alert, order_id, send_now, halted, to_send)
            for (alert, webhook), order_id in zip(of_webhooks[:end], order_ids, strict=True)
        ]
        session.execute(
            _MARK_PROCESSED,
            [
                {
                    "alert_id": done.alert_id,
                    "processed_at": None if done.waits_for_cancel else utcnow(),
                    "process_result": done.result[:300],
                    "order_ids": done.to_place,
                }
                for done in recorded
            ],
        )
        rest = [alert.id for alert, _ in of_webhooks[end:]]
    return recorded, to_send, rest


def _shared_part_end(alerts: Sequence[tuple[_Alert, Webhook]]) -> int:
    """How many of the alerts (in id order) are recorded in one transaction: as many as give the same
    orders as one at a time, each placed (and filled) before the next is read. An alert sized as a % of
    a balance comes first (an order before it may change that balance); a webhook's second alert joins
    only as a buy or sell after alerts that asked for no stop-loss / take-profit (which would be in its
    way once their entry fills). The others wait for the next transaction, after those are placed."""
    asked_exits: dict[int, bool] = {}
    for index, (alert, webhook) in enumerate(alerts):
        payload = alert.payload or {}
        trade = payload.get("action") in ("buy", "sell")
        if index and trade and not payload.get("quantity") and webhook.size_mode == "percent":
            return index
        if webhook.id in asked_exits and (asked_exits[webhook.id] or not trade):
            return index
        asked_exits[webhook.id] = asked_exits.get(webhook.id, False) or asks_for_exits(payload)
    return len(alerts)


def _record(
    session: Session,
    webhook: Webhook,
    alert: _Alert,
    order_id: int,
    send_now: bool,
    halted: bool,
    to_send: list[placement.PreparedOrder],
) -> _Recorded:
    """One alert's orders recorded (and, with `send_now`, prepared into `to_send`) in the batch's
    transaction; the alert is marked processed (or waiting) by the caller, with the result returned."""
    to_place: list[int] = []
    to_cancel: list[int] = []
    try:
        with session.begin_nested():  # a failure half-way leaves no half-recorded order behind
            orders, to_cancel, result = _orders_for(session, webhook, alert, order_id)
            to_place = [order.id for order in orders]
            if send_now:
                to_send += _prepare_all(session, orders, halted)
    except ProtectionStillOpen as waiting:
        log.info("webhook_alert_waits_for_cancel", extra={"alert_id": alert.id, "order_ids": waiting.order_ids})
        return _Recorded(alert.id, True, [], [], str(waiting))  # left unprocessed, the reason shown
    except (NothingToDo, LookupError) as exc:
        to_place, to_cancel, result = [], [], f"no order: {exc}"
    except Exception as exc:  # noqa: BLE001 - a venue/balance error must not lose the alert: keep the reason
        log.warning("webhook_alert_failed", extra={"alert_id": alert.id, "error": str(exc)[:200]})
        to_place, to_cancel, result = [], [], f"no order: {_readable(exc)}"
    if not asks_for_exits(alert.payload):
        note_needs_no_protection(to_place)
    return _Recorded(alert.id, False, to_place, to_cancel, result)


def _act_on(recorded: _Recorded, sent: set[int], celery_app: Celery, *, defer_trade: bool, send_now: bool) -> list[int]:
    """After the commit: place one alert's orders not `sent` already, ask for its cancels, or wait for
    its protection's."""
    alert_id = recorded.alert_id
    if recorded.waits_for_cancel:  # sent after the commit: the task locks this alert again
        return _defer_until_cancelled(alert_id, celery_app) if defer_trade else []
    log.info(
        "webhook_alert_processed",
        extra={"alert_id": alert_id, "order_ids": recorded.to_place, "result": recorded.result},
    )
    _place_recorded([order_id for order_id in recorded.to_place if order_id not in sent], celery_app, send_now)
    for order_id in recorded.to_cancel:
        try:
            tasks.send_cancel_order(order_id, app=celery_app)
        except Exception as exc:  # noqa: BLE001 - the order stays open; the trader can cancel again
            log.warning("webhook_cancel_enqueue_failed", extra={"order_id": order_id, "error": str(exc)[:200]})
    return recorded.to_place


def _readable(exc: Exception) -> str:
    """What the trader's request log may show: a database error's text holds SQL and parameters."""
    if isinstance(exc, SQLAlchemyError):
        return "the order could not be recorded (a database error; the worker log has the details)"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _prepare_all(session: Session, orders: list[Order], halted: bool) -> list[placement.PreparedOrder]:
    """The recorded orders moved to `sent` in this transaction, when their venue's rules are at hand.
    The others stay `new` and are placed after the commit: this transaction holds the webhook's lock
    and must not wait for a venue to answer."""
    return [
        prepared
        for order in orders
        if (prepared := placement.prepare(session, order, offline=True, halted=halted)) is not None
    ]


def _place_recorded(order_ids: list[int], celery_app: Celery, send_now: bool) -> None:
    """With `send_now`, place the recorded orders here (their venue's rules are loaded now, outside the
    alert's locks); the rest, and whatever fails, go to the `orders` queue."""
    for order_id in order_ids:
        try:
            if send_now:
                placement.place(order_id)
                continue
        except Exception as exc:  # noqa: BLE001 - placement is idempotent by order id: the queue retries it
            log.warning("webhook_place_deferred", extra={"order_id": order_id, "error": str(exc)[:200]})
        enqueue_placement(celery_app, order_id)  # False = Redis down: the orders reconciliation re-enqueues


def _defer_until_cancelled(alert_id: int, celery_app: Celery) -> list[int]:
    try:
        tasks.send_trade_after_cancelling(alert_id, app=celery_app)
    except Exception as exc:  # noqa: BLE001 - the alert stays unprocessed: the sweep picks it up
        log.warning("webhook_after_cancel_enqueue_failed", extra={"alert_id": alert_id, "error": str(exc)[:200]})
    return []


def trade_after_cancelling(
    alert_id: int, celery_app: Celery, cancel_order: Callable[[int], object], *, send_now: bool = False
) -> list[int]:
    """Cancel the protection still resting in an alert's way (`cancel_order(order_id)` asks the venue and
    records its answer, fills included), then process the alert with what the webhook still holds."""
    with session_scope() as session:
        alert = session.get(WebhookAlert, alert_id)
        if (
            alert is None
            or alert.processed_at is not None
            or alert.action not in ("close", "buy", "sell")
            or alert.symbol is None
        ):  # an accepted alert has a symbol
            return []
        webhook = session.get_one(Webhook, alert.webhook_id)
        resting = open_protection_ids(
            session, protection_in_the_way(webhook.id, alert.action), webhook.broker_id, alert.symbol, OPEN_STATES
        )
    for order_id in resting:
        cancel_order(order_id)
    return process_alert(alert_id, celery_app, defer_trade=False, send_now=send_now)


def unprocessed_alert_ids(session: Session, older_than: timedelta = SWEEP_AFTER, limit: int = 500) -> list[int]:
    """Accepted alerts nobody turned into orders (web process died, Postgres blinked after the INSERT)."""
    cutoff = utcnow() - older_than
    return list(
        session.scalars(
            select(WebhookAlert.id)
            .where(
                WebhookAlert.status == "accepted",
                WebhookAlert.processed_at.is_(None),
                WebhookAlert.received_at < cutoff,
            )
            .order_by(WebhookAlert.id)
            .limit(limit)
        )
    )
