"""One bot tick: the decision at a candle close, turned into at most one market order, exactly once.

A tick (1) settles the bot's earlier orders (sync what is open, place what was recorded but never
sent, put on the stop-loss/take-profit of a filled entry), (2) loads the last candles from the
candles table and the position from our fills ledger, (3) asks the strategy's warm sandbox, then
(4) records the tick and its order in one transaction, locked on the bot row: the unique
(bot, candle) tick row makes a redelivered or concurrent tick a no-op, so a candle never orders
twice. The order is then placed from this worker directly (no second queue hop: "a market order
right after the close"), which also tells us at once whether the entry filled, so the protective
orders follow within the same tick. There is no generic after-fill hook in the order pipeline;
an entry not filled yet gets its protection at the next tick that finds it filled.
Settling, placing and protecting a bot's orders: bot_orders.py.

Failures: a strategy error or timeout stops the bot (state `error`, with type, message and line);
an exchange error is recorded on the bot, which keeps running, except an authentication error or a
symbol the broker does not list, which pause it (and notify the trader).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.bots.bot_orders import open_protection, place_bot_order, protect, settle_orders, waiting_order
from core.bots.spec import BotSpec, spec_of, symbol_rules
from core.brokers import exchange_for, last_price
from core.candles.candle import ClosedCandle, timeframe_ms
from core.candles.store import load_candles
from core.exchanges.errors import AuthError, ExchangeError, InvalidOrder, UnknownSymbol
from core.exchanges.models import SymbolRules
from core.exchanges.rules import decimal_str, round_to_step
from core.infra.db import new_session, session_scope, utcnow
from core.ledger.positions import Position, bot_position
from core.models import Bot, BotTick, BrokerConnection, StrategyVersion
from core.notifications import events as notifications
from core.orders import placement
from core.orders.sizing import quantity_from_quote
from core.orders.submit import OrderIntent, record_order
from core.strategies.sandbox import SandboxError

log = logging.getLogger(__name__)

# A market buy of the whole free balance must stay affordable when the price ticks up after the close.
PRICE_HEADROOM = Decimal("0.002")
MIN_STALE_MS = 30_000
KEEP_TICKS = 2000  # per bot; older tick rows are pruned


@dataclass(frozen=True)
class TickResult:
    bot_id: int
    candle_time: int
    action: str  # hold | enter | exit | skip | error | duplicate
    note: str = ""
    order_ids: tuple[int, ...] = ()
    error: dict | None = None

    def as_dict(self) -> dict:
        return {
            "bot_id": self.bot_id,
            "candle_time": self.candle_time,
            "action": self.action,
            "note": self.note,
            "order_ids": list(self.order_ids),
            "error": self.error,
        }


# (spec, candle rows oldest first, position or None) -> a checked decision; raises SandboxError.
Decide = Callable[[BotSpec, list[list], dict | None], dict]


@dataclass
class _Plan:
    action: str
    note: str = ""
    intents: list[OrderIntent] = field(default_factory=list)
    protection: dict | None = None
    error: dict | None = None
    new_state: str | None = None


class _Marks:
    """Where a tick's time goes, for the `bot_ticked` log line (and `aristobot bench bots`): the wait in the
    queue (from the feeds' enqueue to this task's start), then ms since the start at each step."""

    def __init__(self, issued_ms: int | None, start_ms: int, close_ms: int = 0, started: float | None = None):
        self.start = time.monotonic() if started is None else started
        self.phases: dict[str, int] = {}
        if issued_ms is not None:
            self.phases = {"issued_after_close_ms": issued_ms - close_ms, "queued_ms": start_ms - issued_ms}

    def mark(self, step: str) -> None:
        self.phases[f"{step}_ms"] = int((time.monotonic() - self.start) * 1000)


def stale_after_ms(timeframe: str) -> int:
    return max(MIN_STALE_MS, timeframe_ms(timeframe) // 2)


# ---- the tick -------------------------------------------------------------------------------------


def run_tick(
    bot_id: int,
    candle_time: int,
    timeframe: str,
    decide: Decide,
    *,
    issued_ms: int | None = None,
    now_ms: int | None = None,
) -> TickResult:
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    started = time.monotonic()
    spec, refusal = _load_spec(bot_id, candle_time, timeframe)
    if refusal is not None:
        return refusal
    assert spec is not None
    marks = _Marks(issued_ms, now_ms, candle_time + timeframe_ms(timeframe), started)
    if issued_ms is not None and now_ms - issued_ms > stale_after_ms(timeframe):
        waited = (now_ms - issued_ms) // 1000
        return _commit(
            spec,
            candle_time,
            _Plan("skip", f"tick waited {waited} s in the queue: too late to trade on this close"),
            None,
            started,
        )
    try:
        settle_orders(spec)
        marks.mark("settled")
        with new_session() as session:
            candles = load_candles(
                session.connection(),
                spec.source_venue,
                spec.source_symbol,
                spec.timeframe,
                end_ms=candle_time,
                limit=spec.candles_needed,
                newest=True,
            )
            rules = symbol_rules(session, spec)
            position = bot_position(session, spec.bot_id, spec.symbol)
            waiting = waiting_order(session, spec.bot_id)
        marks.mark("loaded")
    except ExchangeError as err:  # the venue is down: nothing is sent this tick, the bot keeps running
        return _commit(spec, candle_time, _exchange_failure(err, "reading the market"), None, started)
    if not candles or candles[-1].open_time != candle_time:
        return _commit(spec, candle_time, _Plan("skip", "the candle that closed is not stored yet"), None, started)
    if waiting is not None:
        return _commit(spec, candle_time, _Plan("skip", f"waiting for order #{waiting} to settle"), None, started)
    try:
        decision = decide(spec, _rows(candles), _position_payload(position, rules))
        marks.mark("decided")
    except SandboxError as exc:
        error = {**exc.error, "kind": "strategy", "at_candle": candle_time}
        log.warning(
            "bot_strategy_failed", extra={"bot_id": bot_id, "error_type": exc.error["type"], "line": exc.error["line"]}
        )
        return _commit(spec, candle_time, _Plan("error", str(exc)[:300], error=error, new_state="error"), None, started)
    try:
        plan = _plan(spec, decision, position, rules, candles[-1])
    except ExchangeError as err:
        plan = _exchange_failure(err, "preparing the order")
    marks.mark("planned")
    return _commit(spec, candle_time, plan, decision, started, marks)


def _load_spec(bot_id: int, candle_time: int, timeframe: str) -> tuple[BotSpec | None, TickResult | None]:
    with new_session() as session:
        bot = session.get(Bot, bot_id)
        if bot is None:
            return None, TickResult(bot_id, candle_time, "skip", "no such bot")
        if bot.state != "running":
            return None, TickResult(bot_id, candle_time, "skip", f"bot is {bot.state}")
        if bot.timeframe != timeframe:
            return None, TickResult(bot_id, candle_time, "skip", f"bot runs on {bot.timeframe}, not {timeframe}")
        if bot.last_candle_time is not None and candle_time <= bot.last_candle_time:
            return None, TickResult(bot_id, candle_time, "duplicate", "this candle or a later one was handled")
        version = session.get(StrategyVersion, bot.strategy_version_id) if bot.strategy_version_id else None
        spec = spec_of(bot, version)
    if version is None:
        message = "the bot's strategy version was deleted"
        error = {"type": "StrategyMissing", "message": message, "line": None, "candle_time": None, "kind": "strategy"}
        plan = _Plan("error", message, error=error, new_state="error")
        return None, _commit(spec, candle_time, plan, None, time.monotonic())
    return spec, None


def _rows(candles: list[ClosedCandle]) -> list[list]:
    return [[c.open_time, str(c.open), str(c.high), str(c.low), str(c.close), str(c.volume)] for c in candles]


def holds(position: Position, rules: SymbolRules) -> bool:
    """Less than the venue's minimum order is dust, not a position the strategy could exit."""
    return round_to_step(position.quantity, rules.step_size) >= max(rules.min_qty, rules.step_size)


def _position_payload(position: Position, rules: SymbolRules) -> dict | None:
    if not holds(position, rules):
        return None
    return {
        "side": "long",
        "size": float(position.quantity),
        "entry_price": float(position.entry_price) if position.entry_price is not None else None,
        "entry_time_ms": int(position.entry_time.timestamp() * 1000) if position.entry_time else None,
    }


def _exchange_failure(err: ExchangeError, doing: str) -> _Plan:
    message = f"{doing}: {err}"[:500]
    error = {"type": type(err).__name__, "message": message, "line": None, "candle_time": None, "kind": "exchange"}
    log.warning("bot_exchange_error", extra={"error_type": error["type"], "doing": doing})
    # A rejected key or a symbol the broker does not list fails every tick alike: pause (and notify) instead.
    stop = isinstance(err, AuthError | UnknownSymbol)
    return _Plan("error", message[:300], error=error, new_state="paused" if stop else None)


# ---- from a decision to orders -------------------------------------------------------------------


def _plan(spec: BotSpec, decision: dict, position: Position, rules: SymbolRules, candle: ClosedCandle) -> _Plan:
    long = holds(position, rules)
    if decision["exit"] and long:
        return _exit_plan(spec, rules)
    enter = decision.get("enter")
    if enter == "short":
        return _Plan("hold", "short entries need a margin or perp venue; ignored on spot")
    if enter == "long" and not long:
        return _entry_plan(spec, decision, rules, candle)
    return _Plan("hold", "holding the position" if long else "no signal")


def _exit_plan(spec: BotSpec, rules: SymbolRules) -> _Plan:
    # The protective orders lock the base asset: take them off before selling it.
    with new_session() as session:
        protection = open_protection(session, spec.bot_id)
    for order_id in protection:
        placement.cancel(order_id)
    with new_session() as session:
        position = bot_position(session, spec.bot_id, spec.symbol)
        broker = session.get_one(BrokerConnection, spec.broker_id)
    if not holds(position, rules):
        return _Plan("hold", "the position was closed by its stop-loss, take-profit or trailing stop")
    free = exchange_for(broker).balances().get(rules.base)
    quantity = round_to_step(min(position.quantity, free.free if free else Decimal(0)), rules.step_size)
    if quantity < rules.min_qty or quantity <= 0:
        return _Plan("hold", f"only {decimal_str(quantity)} {rules.base} free to sell: below the minimum order")
    intent = OrderIntent(
        broker_id=spec.broker_id,
        symbol=spec.symbol,
        side="sell",
        type="market",
        quantity=quantity,
        source="bot",
        source_ref=str(spec.bot_id),
    )
    return _Plan("exit", f"sell {decimal_str(quantity)} {rules.base} at market", [intent])


def _entry_plan(spec: BotSpec, decision: dict, rules: SymbolRules, candle: ClosedCandle) -> _Plan:
    with new_session() as session:
        exchange = exchange_for(session.get_one(BrokerConnection, spec.broker_id))
    free = exchange.balances().get(rules.quote)
    free_quote = free.free if free else Decimal(0)
    fraction = Decimal(str(decision["size_fraction"]))
    price = last_price(exchange, spec.symbol) or candle.close
    try:
        quantity = quantity_from_quote(free_quote * fraction / (1 + PRICE_HEADROOM), price, rules)
    except InvalidOrder as err:
        return _Plan("hold", f"entry signal, but {err}"[:300])
    if quantity < rules.min_qty or quantity * price < rules.min_notional:
        return _Plan(
            "hold",
            f"entry signal, but {decimal_str(fraction * 100)}% of {decimal_str(free_quote)} "
            f"{rules.quote} is below the minimum order of {spec.symbol}",
        )
    intent = OrderIntent(
        broker_id=spec.broker_id,
        symbol=spec.symbol,
        side="buy",
        type="market",
        quantity=quantity,
        source="bot",
        source_ref=str(spec.bot_id),
    )
    exits = ("stop_loss", "take_profit", "trailing_stop", "take_profit_ladder")
    protection = {key: decision[key] for key in exits if decision.get(key) is not None}
    note = f"buy {decimal_str(quantity)} {rules.base} at market ({decimal_str(fraction * 100)}% of free {rules.quote})"
    return _Plan("enter", note, [intent], protection or None)


# ---- recording, then placing ---------------------------------------------------------------------


def _commit(
    spec: BotSpec, candle_time: int, plan: _Plan, decision: dict | None, started: float, marks: _Marks | None = None
) -> TickResult:
    """Record the tick (and its orders) once; then place the orders."""
    try:
        with session_scope() as session:
            bot = session.scalar(select(Bot).where(Bot.id == spec.bot_id).with_for_update())
            if bot is None or bot.state != "running":
                return TickResult(spec.bot_id, candle_time, "skip", "the bot was paused meanwhile")
            if (
                session.scalar(select(BotTick.id).where(BotTick.bot_id == bot.id, BotTick.candle_time == candle_time))
                is not None
            ):
                return TickResult(spec.bot_id, candle_time, "duplicate", "this candle was already handled")
            order_ids = [record_order(session, bot.user_id, intent).id for intent in plan.intents]
            tick = BotTick(
                bot_id=bot.id,
                candle_time=candle_time,
                action=plan.action,
                decision=decision,
                note=plan.note[:300],
                order_ids=order_ids,
                error=plan.error,
                duration_ms=int((time.monotonic() - started) * 1000),
            )
            session.add(tick)
            bot.last_tick_at, bot.last_candle_time = utcnow(), candle_time
            if decision is not None:
                bot.last_decision = {**decision, "action": plan.action, "note": plan.note[:300]}
            bot.last_error = plan.error
            if plan.new_state:
                bot.state = plan.new_state
            if plan.protection and order_ids:
                bot.pending_protection = {"order_id": order_ids[0], **plan.protection}
            session.flush()
            _prune(session, bot.id)
    except IntegrityError:  # a concurrent delivery of the same tick won the unique (bot, candle) row
        return TickResult(spec.bot_id, candle_time, "duplicate", "this candle was already handled")
    marks = marks or _Marks(None, 0)  # a tick that decided nothing: no steps to report
    marks.mark("committed")
    if plan.new_state:
        notifications.bot_stopped(spec.user_id, spec.bot_id, plan.new_state, plan.error)
    for order_id in order_ids:
        place_bot_order(spec, order_id)
    marks.mark("placed")
    if plan.protection:
        protect(spec)
    log.info(
        "bot_ticked",
        extra={
            "bot_id": spec.bot_id,
            "candle_time": candle_time,
            "action": plan.action,
            "order_ids": order_ids,
            **marks.phases,
        },
    )
    return TickResult(spec.bot_id, candle_time, plan.action, plan.note, tuple(order_ids), plan.error)


def _prune(session: Session, bot_id: int) -> None:
    cutoff = session.scalar(
        select(BotTick.candle_time)
        .where(BotTick.bot_id == bot_id)
        .order_by(BotTick.candle_time.desc())
        .offset(KEEP_TICKS)
        .limit(1)
    )
    if cutoff is not None:
        session.query(BotTick).filter(BotTick.bot_id == bot_id, BotTick.candle_time <= cutoff).delete()
