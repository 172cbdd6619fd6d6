"""Flatten: cancel every open order and close every position of a trader on the chosen brokers.

Positions are the ones the platform tracks for its automation: each bot's long position and each
webhook's net position per symbol, from our own fills ledger (never the venue balance, which manual
trades share). A close is an ordinary market sell recorded under its owner (the bot, or a webhook
alert stored for it), so the owner's position and P&L stay right, and it goes through the order
pipeline: recorded `new`, then placed (and refused while trading is halted by the administrator).

Brokers are flattened one after the other; a broker that fails (venue down, keys revoked) is listed
with what was left on it and the others proceed. Running flatten again retries what is left.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.brokers import exchange_for, symbol_rules
from core.exchanges.errors import ExchangeError
from core.exchanges.rules import decimal_str, round_to_step
from core.infra.bus import flatten_report, get_redis
from core.infra.db import new_session, session_scope, utcnow
from core.ledger.positions import bot_position, net_position
from core.models import Bot, BrokerConnection, Order, Webhook, WebhookAlert
from core.orders import placement
from core.orders.submit import OrderIntent, record_order
from core.stop import open_orders, pause_all
from core.webhooks.positions import webhook_orders

log = logging.getLogger(__name__)
PAUSED_BY_FLATTEN = "paused by the trader's flatten"
REPORT_TTL_S = 24 * 3600  # the last flatten's report stays readable for a day


@dataclass(frozen=True)
class Close:
    """One position to sell at market: whose it is (a bot or a webhook) and how much."""

    broker_id: int
    owner: str  # bot | webhook | manual (a position closed from the dashboard: no owner to attribute)
    owner_id: int
    owner_name: str
    symbol: str
    quantity: Decimal
    side: str = "sell"  # buy closes a short

    def describe(self) -> str:
        return f"{self.side} {decimal_str(self.quantity)} {self.symbol} at market ({self.owner} {self.owner_name})"


@dataclass(frozen=True)
class Cancel:
    order_id: int
    broker_id: int
    symbol: str
    side: str
    type: str
    state: str

    def describe(self) -> str:
        return f"cancel order #{self.order_id}: {self.side} {self.type} {self.symbol} ({self.state})"


@dataclass
class BrokerPlan:
    broker_id: int
    label: str
    venue: str
    cancels: list[Cancel] = field(default_factory=list)
    closes: list[Close] = field(default_factory=list)


@dataclass
class BrokerResult:
    broker_id: int
    label: str
    cancelled: list[int] = field(default_factory=list)
    close_orders: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the venue failed: what is left here is listed in notes

    @property
    def failed(self) -> bool:
        return self.error is not None


def _positions(session: Session, user_id: int, broker: BrokerConnection) -> list[Close]:
    closes = []
    for bot in session.scalars(select(Bot).where(Bot.user_id == user_id, Bot.broker_id == broker.id).order_by(Bot.id)):
        position = bot_position(session, bot.id, bot.symbol)
        if position.quantity > 0:
            closes.append(Close(broker.id, "bot", bot.id, bot.name, bot.symbol, position.quantity))
    for webhook in session.scalars(
        select(Webhook).where(Webhook.user_id == user_id, Webhook.broker_id == broker.id).order_by(Webhook.id)
    ):
        symbols = session.scalars(webhook_orders(webhook.id).with_only_columns(Order.symbol).distinct())
        for symbol in sorted(symbols):
            quantity = net_position(session, webhook, symbol)
            if quantity > 0:
                closes.append(Close(broker.id, "webhook", webhook.id, webhook.name, symbol, quantity))
    return closes


def plan(session: Session, user_id: int, broker_ids: Iterable[int] | None = None) -> list[BrokerPlan]:
    """What a flatten would do, per broker (the confirmation lists it); someone else's broker is ignored."""
    query = select(BrokerConnection).where(BrokerConnection.user_id == user_id).order_by(BrokerConnection.id)
    if broker_ids is not None:
        query = query.where(BrokerConnection.id.in_(list(broker_ids)))
    plans = []
    for broker in session.scalars(query):
        cancels = [
            Cancel(o.id, o.broker_id, o.symbol, o.side, o.type, o.state)
            for o in open_orders(session, user_id, [broker.id])
        ]
        plans.append(BrokerPlan(broker.id, broker.label, broker.venue, cancels, _positions(session, user_id, broker)))
    return plans


def _owner_ref(session: Session, close: Close, why: str) -> tuple[str, str | None]:
    """(Order.source, Order.source_ref) of a close: a bot's id, or a webhook alert stored for the flatten
    (a webhook's orders are attributed through its alerts), or a manual order."""
    if close.owner == "manual":
        return "manual", None
    if close.owner == "bot":
        return "bot", str(close.owner_id)
    alert = WebhookAlert(
        webhook_id=close.owner_id,
        status="accepted",
        http_status=202,
        action="close",
        symbol=close.symbol,
        body="",
        payload={"action": "close", "symbol": close.symbol},
        reason=f"{why} requested by the trader",
        processed_at=utcnow(),
    )
    session.add(alert)
    session.flush()
    return "webhook", str(alert.id)


def _record_close(broker: BrokerConnection, close: Close, free: Decimal, result: BrokerResult) -> int | None:
    with session_scope() as session:
        rules = symbol_rules(session, broker.id, close.symbol)
        step = rules.step_size if rules else Decimal(0)
        quantity = min(close.quantity, free)
        quantity = round_to_step(quantity, step) if step else quantity
        if quantity <= 0 or (rules and quantity < rules.min_qty):
            result.notes.append(
                f"{close.describe()}: only {decimal_str(quantity)} free to sell, below the minimum order; left as is"
            )
            return None
        return record_close(session, broker.user_id, close, quantity, "flatten").id


def record_close(session: Session, user_id: int, close: Close, quantity: Decimal, why: str) -> Order:
    """The market order of a close, recorded (`new`) under its owner; `why` names it on a webhook's alert."""
    source, ref = _owner_ref(session, close, why)
    order = record_order(
        session,
        user_id,
        OrderIntent(
            broker_id=close.broker_id,
            symbol=close.symbol,
            side=close.side,
            type="market",
            quantity=quantity,
            source=source,
            source_ref=ref,
        ),
    )
    if source == "webhook":
        alert = session.get_one(WebhookAlert, int(ref or 0))
        alert.order_ids, alert.process_result = [order.id], f"{why}: {close.side} order #{order.id} recorded"
    return order


def _flatten_broker(broker_plan: BrokerPlan, user_id: int, place: Callable[[int], object]) -> BrokerResult:
    result = BrokerResult(broker_plan.broker_id, broker_plan.label)
    for cancel in broker_plan.cancels:
        outcome = placement.cancel(cancel.order_id)
        if outcome.message and outcome.message.startswith("cancel failed"):
            raise ExchangeError(outcome.message)
        result.cancelled.append(cancel.order_id)
    if not broker_plan.closes:
        return result
    with new_session() as session:
        broker = session.get_one(BrokerConnection, broker_plan.broker_id)
        session.expunge(broker)
    balances = exchange_for(broker).balances()
    spent: dict[str, Decimal] = {}
    for close in broker_plan.closes:
        with new_session() as session:
            rules = symbol_rules(session, broker.id, close.symbol)
        base = rules.base if rules else close.symbol
        free = (balances[base].free if base in balances else Decimal(0)) - spent.get(base, Decimal(0))
        order_id = _record_close(broker, close, free, result)
        if order_id is not None:
            spent[base] = spent.get(base, Decimal(0)) + close.quantity
            place(order_id)
            result.close_orders.append(order_id)
            _note_refusal(order_id, close, result)
    return result


def _note_refusal(order_id: int, close: Close, result: BrokerResult) -> None:
    """A close the pipeline refused (trading halted by the administrator, the venue's rules) is said so."""
    with new_session() as session:
        order = session.get_one(Order, order_id)
        if order.state == "rejected":
            result.notes.append(f"{close.describe()}: order #{order_id} rejected: {order.error_message}")


def flatten(
    user_id: int, broker_ids: Iterable[int] | None = None, place: Callable[[int], object] = placement.place
) -> list[BrokerResult]:
    """Pause the automation on the brokers, then cancel their open orders and close their positions.
    `place` sends a recorded close (default: here and now, through the order pipeline)."""
    with session_scope() as session:
        plans = plan(session, user_id, broker_ids)
        pause_all(session, user_id, PAUSED_BY_FLATTEN, [p.broker_id for p in plans])
    results = []
    for broker_plan in plans:
        try:
            results.append(_flatten_broker(broker_plan, user_id, place))
        except ExchangeError as err:
            with new_session() as session:
                left = plan(session, user_id, [broker_plan.broker_id])[0]
            failed = BrokerResult(
                broker_plan.broker_id,
                broker_plan.label,
                error=str(err)[:300],
                notes=[item.describe() for item in left.cancels] + [item.describe() for item in left.closes],
            )
            results.append(failed)
            log.warning(
                "flatten_broker_failed",
                extra={"user_id": user_id, "broker_id": broker_plan.broker_id, "error": str(err)[:300]},
            )
    log.warning(
        "flattened", extra={"user_id": user_id, "brokers": len(results), "failed": sum(r.failed for r in results)}
    )
    return results


def close_bot(
    user_id: int, bot_id: int, *, pause: bool, place: Callable[[int], object] = placement.place
) -> BrokerResult:
    """A bot's "Close position" ("Pause and close" with `pause`): the bot paused first when asked, its open
    orders cancelled (its stop-loss / take-profit lock the asset it sells), its position sold at market under
    the bot, through the order pipeline. Nothing else of the trader's is touched. Raises LookupError for a
    bot that is not the trader's, ExchangeError when the venue failed (what is left stays as it is)."""
    with session_scope() as session:
        bot = session.get(Bot, bot_id)
        if bot is None or bot.user_id != user_id:
            raise LookupError(f"no bot #{bot_id}")
        if pause and bot.state == "running":
            bot.state, bot.updated_at = "paused", utcnow()
        broker = session.get_one(BrokerConnection, bot.broker_id)
        cancels = [
            Cancel(o.id, o.broker_id, o.symbol, o.side, o.type, o.state)
            for o in open_orders(session, user_id, [broker.id])
            if o.source == "bot" and o.source_ref == str(bot.id)
        ]
        held = bot_position(session, bot.id, bot.symbol).quantity
        closes = [Close(broker.id, "bot", bot.id, bot.name, bot.symbol, held)] if held > 0 else []
        bot_plan = BrokerPlan(broker.id, broker.label, broker.venue, cancels, closes)
    result = _flatten_broker(bot_plan, user_id, place)
    log.warning(
        "bot_position_closed",
        extra={"user_id": user_id, "bot_id": bot_id, "paused": pause, "orders": result.close_orders},
    )
    return result


# ---- the report a worker leaves for the trader's page --------------------------------------------


def store_report(user_id: int, results: list[BrokerResult] | None) -> None:
    """None: a flatten was handed to a worker and is under way."""
    report = {"running": results is None, "results": [asdict(r) | {"failed": r.failed} for r in results or []]}
    get_redis().set(flatten_report(user_id), json.dumps(report), ex=REPORT_TTL_S)


def load_report(user_id: int) -> dict | None:
    stored = get_redis().get(flatten_report(user_id))
    return json.loads(stored) if stored else None


def run_and_report(user_id: int, broker_ids: list[int] | None) -> list[BrokerResult]:
    """What the worker runs: the flatten, then its report for the page."""
    results = flatten(user_id, broker_ids)
    store_report(user_id, results)
    return results
