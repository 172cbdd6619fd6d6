"""Stop-loss / take-profit of a webhook entry: the protective exit placed once the entry has filled.

The alert says where (its `stop_loss` / `take_profit` prices); the fill says how much (what the entry
really bought, less the fee the venue took in the base asset, never more than the webhook holds).
Both prices make one OCO on the exit side, one price a single stop-loss or limit order. A
`trailing_stop_pct` makes a trailing stop; a `take_profit_ladder` one order per rung (core/orders/ladder.py:
limits, or with a `stop_loss` one OCO per rung), its `pct` targets measured from the entry's fill price.

Exactly once per entry: the entry row is locked while we look for its protection (linked by
`oco_group = "protect:<entry id>"`) and record it, so a fill seen twice, a redelivered task and the
sweep that repairs a worker killed mid-way all find the first one.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, BindParameter, ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from core.brokers import symbol_rules
from core.exchanges.errors import InvalidOrder
from core.infra.db import session_scope, utcnow
from core.ledger.positions import net_position
from core.models import Fill, Order, SymbolRule, Webhook, WebhookAlert
from core.orders import ladder
from core.orders.states import OrderState
from core.orders.submit import OrderIntent, enqueue_placement, record_order
from core.webhooks.positions import webhook_orders

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

GROUP_PREFIX = "protect:"
SWEEP_AFTER = timedelta(seconds=5)  # the worker that saw the fill normally protects within milliseconds
SWEEP_WITHIN = timedelta(days=1)  # older unprotected entries are left to the trader
ENTRY_ACTIONS = ("buy", "sell")
EXTRA_EXITS = ("trailing_stop_pct", "take_profit_ladder")


def protection_group(entry_id: int) -> str:
    return f"{GROUP_PREFIX}{entry_id}"


def is_protection(order: Order) -> bool:
    return bool(order.oco_group and order.oco_group.startswith(GROUP_PREFIX))


def protection_orders(
    broker_id: int | BindParameter[int], symbol: str | BindParameter[str]
) -> tuple[ColumnElement[bool], ...]:
    """Conditions selecting the protective orders of a market (webhook entries carry no oco_group),
    in the shape of the partial index `ix_orders_linked_by_market`."""
    return (
        Order.broker_id == broker_id,
        Order.symbol == symbol,
        Order.oco_group.is_not(None),
        Order.oco_group.startswith(GROUP_PREFIX),
    )


@dataclass(frozen=True)
class ExitPlan:
    """The protective exit of one entry, before it is recorded."""

    side: str
    quantity: Decimal
    take_profit: Decimal | None
    stop_loss: Decimal | None
    trail_pct: Decimal | None = None
    ladder: tuple[ladder.Target, ...] = ()

    @property
    def order_type(self) -> str:
        if self.ladder:
            return "take-profit ladder"
        if self.trail_pct is not None:
            return "trailing_stop"
        if self.take_profit is not None and self.stop_loss is not None:
            return "oco"
        return "limit" if self.take_profit is not None else "stop_loss"

    def intent(self, entry: Order) -> OrderIntent:
        trailing = self.trail_pct is not None
        return OrderIntent(
            broker_id=entry.broker_id,
            symbol=entry.symbol,
            side=self.side,
            type="trailing_stop" if trailing else "limit" if self.ladder else self.order_type,
            quantity=self.quantity,
            price=self.take_profit,
            stop_price=None if trailing else self.stop_loss,
            source="webhook",
            source_ref=entry.source_ref,
            oco_group=protection_group(entry.id),
            trail_pct=self.trail_pct,
        )

    def intents(self, session: Session, entry: Order) -> list[OrderIntent]:
        """The exit's orders: one, or one per rung of a ladder. Raises InvalidOrder when a ladder cannot be
        sized (a rung below the venue's minimum, a target on the wrong side of the fill price)."""
        if not self.ladder:
            return [self.intent(entry)]
        rules = symbol_rules(session, entry.broker_id, entry.symbol)
        if rules is None:
            raise InvalidOrder(f"the rules of {entry.symbol} are not loaded: load the broker's markets")
        rungs = ladder.size_rungs(self.ladder, self.quantity, self.side, entry.average_price, rules)
        return ladder.rung_intents(self.intent(entry), rungs, self.stop_loss, f"{ladder.LADDER_PREFIX}{entry.id}")

    def misplaced(self, entry_price: Decimal | None) -> str | None:
        """Why these prices cannot protect a position entered at `entry_price` (None: they can)."""
        if entry_price is None:
            return None
        long = self.side == "sell"  # selling out protects a long
        problems = []
        if self.take_profit is not None and (
            self.take_profit <= entry_price if long else self.take_profit >= entry_price
        ):
            problems.append(
                f"take-profit {self.take_profit} is not {'above' if long else 'below'} the entry price {entry_price}"
            )
        if self.stop_loss is not None and (self.stop_loss >= entry_price if long else self.stop_loss <= entry_price):
            problems.append(
                f"stop-loss {self.stop_loss} is not {'below' if long else 'above'} the entry price {entry_price}"
            )
        return "; ".join(problems) or None


def exit_prices(payload: dict[str, Any] | None) -> tuple[Decimal | None, Decimal | None]:
    """(take_profit, stop_loss) of a stored alert payload."""
    payload = payload or {}
    take_profit, stop_loss = payload.get("take_profit"), payload.get("stop_loss")
    return (
        Decimal(str(take_profit)) if take_profit is not None else None,
        Decimal(str(stop_loss)) if stop_loss is not None else None,
    )


def asks_for_exits(payload: dict[str, Any] | None) -> bool:
    """The alert gave a stop-loss or a take-profit price, a trailing stop or a take-profit ladder."""
    payload = payload or {}
    return exit_prices(payload) != (None, None) or any(payload.get(name) is not None for name in EXTRA_EXITS)


def extra_exits(payload: dict[str, Any] | None) -> tuple[Decimal | None, tuple[ladder.Target, ...]]:
    """(trail %, ladder targets) of a stored alert payload (checked when the alert was received)."""
    payload = payload or {}
    trail = payload.get("trailing_stop_pct")
    rungs = payload.get("take_profit_ladder")
    return (
        Decimal(str(trail)) if trail is not None else None,
        ladder.targets_from_json(rungs) if rungs is not None else (),
    )


def _base_asset(session: Session, entry: Order) -> str | None:
    return session.scalar(
        select(SymbolRule.base).where(SymbolRule.broker_id == entry.broker_id, SymbolRule.symbol == entry.symbol)
    )


def received_quantity(session: Session, entry: Order) -> Decimal | None:
    """What the entry left in the account to exit: a buy's fills less the fee taken in the base asset,
    a sell's fills (its fee is paid in the quote). None while the ledger misses some of the fills."""
    recorded, fees = session.execute(
        select(
            func.coalesce(func.sum(Fill.quantity), 0),
            func.coalesce(func.sum(Fill.fee).filter(Fill.fee_asset == _base_asset(session, entry)), 0),
        ).where(Fill.order_id == entry.id)
    ).one()
    if Decimal(recorded) < entry.filled_quantity:
        return None
    return Decimal(recorded) - (Decimal(fees) if entry.side == "buy" else 0)


def plan_exit(session: Session, entry: Order, alert: WebhookAlert, held: Decimal) -> ExitPlan | None:
    """The exit for `entry` (None: the alert asked for none). `held` is the webhook's net position."""
    take_profit, stop_loss = exit_prices(alert.payload)
    trail_pct, rungs = extra_exits(alert.payload)
    if take_profit is None and stop_loss is None and trail_pct is None and not rungs:
        return None
    quantity = received_quantity(session, entry)
    if quantity is None:
        raise LookupError(f"fills of order #{entry.id} are not all recorded yet")
    # Never exit more than the webhook holds: a close may already have sold part of it.
    quantity = min(quantity, held if entry.side == "buy" else -held)
    return ExitPlan(
        side="sell" if entry.side == "buy" else "buy",
        quantity=max(quantity, Decimal(0)),
        take_profit=take_profit,
        stop_loss=stop_loss,
        trail_pct=trail_pct,
        ladder=rungs,
    )


def _existing(session: Session, entry_id: int) -> Order | None:
    return session.scalar(select(Order).where(Order.oco_group == protection_group(entry_id)).limit(1))


def _exited_since(session: Session, entry: Order, webhook_id: int) -> bool:
    """A later alert of the webhook already trades the other way (close, reverse): protecting is moot."""

    later = webhook_orders(webhook_id).where(
        Order.symbol == entry.symbol, Order.id > entry.id, Order.side != entry.side, Order.oco_group.is_(None)
    )
    return session.scalar(later.with_only_columns(Order.id).limit(1)) is not None


def record_protection(session: Session, entry_id: int) -> list[Order] | None:
    """Record the protective exit of a filled webhook entry once (state `new`, or `rejected` with the
    reason when the alert's prices cannot protect it). Returns the orders recorded by this call (one, or
    one per rung of a ladder)."""

    entry = session.scalar(select(Order).where(Order.id == entry_id).with_for_update())
    if entry is None or entry.source != "webhook" or is_protection(entry) or not entry.source_ref:
        return None
    if not entry.is_final or entry.filled_quantity <= 0:
        return None
    alert = session.scalar(select(WebhookAlert).where(WebhookAlert.id == int(entry.source_ref)).with_for_update())
    if alert is None or alert.action not in ENTRY_ACTIONS or not asks_for_exits(alert.payload):
        return None  # most alerts ask for no protection: two queries, not eight
    if _existing(session, entry_id) is not None:
        return None
    webhook = session.get_one(Webhook, alert.webhook_id)
    if _exited_since(session, entry, webhook.id):
        return None
    plan = plan_exit(session, entry, alert, net_position(session, webhook, entry.symbol))
    if plan is None:
        return None
    problem = plan.misplaced(entry.average_price) or (
        f"nothing left to protect: the webhook holds no {entry.symbol}" if plan.quantity <= 0 else None
    )
    try:
        intents = plan.intents(session, entry) if not problem else [plan.intent(entry)]
    except InvalidOrder as err:
        problem, intents = err.message, [plan.intent(entry)]
    orders = [record_order(session, entry.user_id, intent) for intent in intents]
    order = orders[0]
    if problem:
        order.error_kind, order.error_message = "invalid_order", f"protection not placed: {problem}"
        order.move_to(OrderState.REJECTED, "protection_invalid", {"entry_id": entry.id, "error": problem})
    alert.order_ids = [*(alert.order_ids or []), *(o.id for o in orders)]
    note = f"; {plan.order_type} protection #{order.id} for #{entry.id}" + (" refused" if problem else "")
    alert.process_result = ((alert.process_result or "") + note)[-300:]
    log.info(
        "webhook_protection_recorded",
        extra={
            "order_id": order.id,
            "entry_id": entry.id,
            "alert_id": alert.id,
            "order_type": plan.order_type,
            "quantity": str(plan.quantity),
            "refused": problem,
        },
    )
    return orders


# Orders this process recorded for alerts that asked for no stop-loss / take-profit (an alert never
# changes): the worker that sends such an order sees its fill moments later and skips the lookup.
_NEED_NO_PROTECTION: OrderedDict[int, None] = OrderedDict()
NEED_NO_PROTECTION_KEPT = 10_000


def note_needs_no_protection(order_ids: list[int]) -> None:
    for order_id in order_ids:
        _NEED_NO_PROTECTION[order_id] = None
    while len(_NEED_NO_PROTECTION) > NEED_NO_PROTECTION_KEPT:
        _NEED_NO_PROTECTION.popitem(last=False)


def protect_entry(entry_id: int, celery_app: Celery) -> int | None:
    """Record the entry's protection (once) and hand it to the `orders` queue. Returns its (first) id."""
    if entry_id in _NEED_NO_PROTECTION:
        return None
    with session_scope() as session:
        orders = record_protection(session, entry_id)
        if orders is None:
            return None
        sendable = [o.id for o in orders if o.state == OrderState.NEW.value]
        first_id = orders[0].id
    for order_id in sendable:
        enqueue_placement(celery_app, order_id)  # False = Redis down: reconciliation re-enqueues `new` orders
    return first_id


def unprotected_entry_ids(session: Session, older_than: timedelta = SWEEP_AFTER, limit: int = 200) -> list[int]:
    """Filled webhook entries whose alert asked for a stop-loss / take-profit that was never recorded
    (the worker died between the fill and the hook, or the hook failed).

    Bounded by the entries' age: the recent webhook entries are picked first (materialized, so their
    alert ids are read only from webhook orders) and their alerts fetched by primary key, never by
    scanning every alert ever received."""
    now = utcnow()
    protection = aliased(Order)
    wanted = or_(
        WebhookAlert.payload["stop_loss"].as_string().is_not(None),
        WebhookAlert.payload["take_profit"].as_string().is_not(None),
        WebhookAlert.payload["trailing_stop_pct"].as_string().is_not(None),
        WebhookAlert.payload["take_profit_ladder"].as_string().is_not(None),
    )
    final = [s.value for s in (OrderState.FILLED, OrderState.CANCELLED, OrderState.EXPIRED)]
    entries = (
        select(Order.id, func.cast(Order.source_ref, BigInteger).label("alert_id"))
        .where(
            Order.source == "webhook",
            Order.oco_group.is_(None),
            Order.state.in_(final),
            Order.filled_quantity > 0,
            Order.updated_at < now - older_than,
            Order.updated_at > now - SWEEP_WITHIN,
        )
        .cte("recent_entries")
        .prefix_with("MATERIALIZED")
    )
    query = (
        select(entries.c.id)
        .join(WebhookAlert, WebhookAlert.id == entries.c.alert_id)
        .where(
            WebhookAlert.action.in_(ENTRY_ACTIONS),
            wanted,
            ~select(protection.id)
            .where(and_(protection.oco_group == func.concat(GROUP_PREFIX, entries.c.id)))
            .exists(),
        )
        .order_by(entries.c.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def open_protection_ids(
    session: Session, webhook_orders: Select[Order], broker_id: int, symbol: str, states: tuple[str, ...]
) -> list[int]:
    """The protective orders among `webhook_orders` (a select of the webhook's orders) still in `states`."""
    return list(
        session.scalars(
            webhook_orders.where(*protection_orders(broker_id, symbol), Order.state.in_(states))
            .with_only_columns(Order.id)
            .order_by(Order.id)
        )
    )
