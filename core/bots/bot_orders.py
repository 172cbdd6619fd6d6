"""A bot's orders once recorded: placed from the tick's worker (the orders queue when that cannot start),
a rejection noted on the bot (an authentication one pauses it), the stop-loss/take-profit (or trailing
stop, or take-profit ladder: core/orders/ladder.py, one order per rung, each an OCO with the stop when there is
one) of a filled entry put on once, and the unfinished ones brought up to date at the start of a tick."""

from __future__ import annotations

import logging
from decimal import Decimal

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from core.bots.spec import BotSpec
from core.brokers import symbol_rules
from core.exchanges.errors import InvalidOrder
from core.infra.db import new_session, session_scope
from core.ledger.positions import bot_position
from core.models import Bot, Fill, Order
from core.notifications import events as notifications
from core.orders import dispatch, ladder, placement
from core.orders.states import OrderState
from core.orders.submit import OrderIntent, record_order

log = logging.getLogger(__name__)

FINAL = tuple(s.value for s in (OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED))


def _bot_orders(bot_id: int) -> Select[Order]:
    return select(Order).where(Order.source == "bot", Order.source_ref == str(bot_id))


def waiting_order(session: Session, bot_id: int) -> int | None:
    """An entry or exit not settled yet, or whose fills are not all in our ledger yet (they are fetched
    right after the fill, else by reconciliation): the position is not known until then."""
    recorded = select(func.coalesce(func.sum(Fill.quantity), 0)).where(Fill.order_id == Order.id).scalar_subquery()
    return session.scalar(
        _bot_orders(bot_id)
        .with_only_columns(Order.id)
        .where(Order.type == "market", or_(Order.state.not_in(FINAL), Order.filled_quantity > recorded))
        .order_by(Order.id)
        .limit(1)
    )


def open_protection(session: Session, bot_id: int) -> list[int]:
    return list(
        session.scalars(
            _bot_orders(bot_id)
            .with_only_columns(Order.id)
            .where(Order.type != "market", Order.state.not_in(FINAL))
            .order_by(Order.id)
        )
    )


def protective_intent(
    spec: BotSpec,
    quantity: Decimal,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    trail_pct: Decimal | None = None,
) -> OrderIntent:
    """A trail: a trailing stop (the strategy contract gives it alone; native or watched by Aristobot, as the
    order path decides). Both prices: one OCO (a filled leg cancels the other); one of them: a stop-loss or a
    take-profit limit."""

    def sell(order_type: str, *, price: Decimal | None = None, stop_price: Decimal | None = None) -> OrderIntent:
        return OrderIntent(
            broker_id=spec.broker_id,
            symbol=spec.symbol,
            side="sell",
            type=order_type,
            quantity=quantity,
            price=price,
            stop_price=stop_price,
            source="bot",
            source_ref=str(spec.bot_id),
            trail_pct=trail_pct if order_type == "trailing_stop" else None,
        )

    if trail_pct is not None:
        return sell("trailing_stop")
    if stop_loss is not None and take_profit is not None:
        return sell("oco", price=take_profit, stop_price=stop_loss)
    if stop_loss is not None:
        return sell("stop_loss", stop_price=stop_loss)
    return sell("limit", price=take_profit)


def ladder_intents(
    session: Session, spec: BotSpec, entry: Order, quantity: Decimal, stop_loss: Decimal | None, rungs: list
) -> list[OrderIntent]:
    """One sell per rung of the strategy's ladder `[[pct_above_entry, size_pct], ...]` (nearest first, as the
    backtest fills them; the last rung takes what rounding left), targets measured from the entry's fill
    price: limits, or with a stop-loss OCOs of the target and the stop. Raises InvalidOrder when the ladder
    cannot be sized (a rung below the venue's minimum)."""
    rules = symbol_rules(session, spec.broker_id, spec.symbol)
    if rules is None:
        raise InvalidOrder(f"the rules of {spec.symbol} are not loaded: load the broker's markets")
    targets = tuple(
        ladder.Target(size_pct=Decimal(str(size_pct)), pct=Decimal(str(pct))) for pct, size_pct in sorted(rungs)
    )
    sized = ladder.size_rungs(targets, quantity, "sell", entry.average_price, rules)
    base = protective_intent(spec, quantity, stop_loss, None)
    return ladder.rung_intents(base, sized, stop_loss, f"{ladder.LADDER_PREFIX}bot{spec.bot_id}-{entry.id}")


def place_bot_order(spec: BotSpec, order_id: int) -> None:
    """Place from this worker; if that cannot start (venue markets not loadable), the orders queue retries."""
    try:
        placement.place(order_id)
    except Exception as exc:  # noqa: BLE001 - the order is recorded `new`: the orders queue and reconciliation own it
        log.warning(
            "bot_order_place_deferred", extra={"bot_id": spec.bot_id, "order_id": order_id, "error": str(exc)[:200]}
        )
        dispatch.enqueue_order(order_id)
        return
    _note_rejection(spec, order_id)


def _note_rejection(spec: BotSpec, order_id: int) -> None:
    with session_scope() as session:
        order = session.get(Order, order_id)
        if order is None or order.state != OrderState.REJECTED.value:
            return
        bot = session.scalar(select(Bot).where(Bot.id == spec.bot_id).with_for_update())
        if bot is None:
            return
        bot.last_error = {
            "type": "OrderRejected",
            "message": f"order #{order.id}: {order.error_message}"[:500],
            "line": None,
            "candle_time": None,
            "kind": "exchange",
            "order_id": order.id,
        }
        if order.error_kind == "auth" and bot.state == "running":
            bot.state = "paused"
            notifications.bot_stopped(bot.user_id, bot.id, "paused", bot.last_error)
        log.warning(
            "bot_order_rejected", extra={"bot_id": bot.id, "order_id": order.id, "error_kind": order.error_kind}
        )


def protect(spec: BotSpec) -> int | None:
    """Put on the stop-loss/take-profit (or trailing stop, or ladder) of a filled entry, once. Returns the
    protective order id (a ladder's first rung). A ladder that cannot be sized (a rung below the venue's
    minimum) is noted on the bot with the reason, its stop-loss placed alone."""
    with session_scope() as session:
        bot = session.scalar(select(Bot).where(Bot.id == spec.bot_id).with_for_update())
        if bot is None or not bot.pending_protection:
            return None
        pending = bot.pending_protection
        entry = session.get(Order, pending["order_id"])
        if entry is None or (entry.is_final and entry.filled_quantity <= 0):
            bot.pending_protection = None  # the entry never traded: nothing to protect
            return None
        if entry.state != OrderState.FILLED.value:
            return None
        quantity = bot_position(session, spec.bot_id, spec.symbol).quantity
        if quantity <= 0:
            return None  # fills not in the ledger yet: the next tick tries again
        stop, take, trail = (
            Decimal(str(pending[k])) if pending.get(k) is not None else None
            for k in ("stop_loss", "take_profit", "trailing_stop")
        )
        intents = [protective_intent(spec, quantity, stop, take, trail)]
        if pending.get("take_profit_ladder"):
            try:
                intents = ladder_intents(session, spec, entry, quantity, stop, pending["take_profit_ladder"])
            except InvalidOrder as err:  # the stop alone still protects the position
                intents = [protective_intent(spec, quantity, stop, None)] if stop is not None else []
                bot.last_error = {
                    "type": "InvalidOrder",
                    "message": f"take-profit ladder not placed: {err.message}"[:500],
                    "line": None,
                    "candle_time": None,
                    "kind": "exchange",
                }
        order_ids = [record_order(session, bot.user_id, intent).id for intent in intents]
        bot.pending_protection = None
    log.info("bot_protection_recorded", extra={"bot_id": spec.bot_id, "order_ids": order_ids})
    for order_id in order_ids:
        place_bot_order(spec, order_id)
    return order_ids[0] if order_ids else None


def settle_orders(spec: BotSpec) -> None:
    """Bring the bot's unfinished orders up to date (fills into the ledger), then protect a filled entry."""
    with new_session() as session:
        unfinished = session.execute(
            _bot_orders(spec.bot_id)
            .with_only_columns(Order.id, Order.state)
            .where(Order.state.not_in(FINAL))
            .order_by(Order.id)
        ).all()
    for order_id, state in unfinished:
        if state == OrderState.NEW.value:
            place_bot_order(spec, order_id)
        else:
            placement.sync(order_id)
    protect(spec)
