""" "Backtest this bot over its live period" (the bot page): the bot's strategy version, parameters and fee run by
the backtest runner on its signal source's candles from its first decision to now, then its live trades and
the backtest's paired one by one (core/backtest/trade_compare.py, the rules of docs/METRICS.md).

The live period starts at the first candle the bot decided on (its oldest tick row). The backtest starts
`candles_needed` candles earlier, so its indicators see what the bot's did at that first decision; only
trades entered after that decision are compared. Sizing follows the strategy in both; the backtest's cash is
the free quote the bot's first entry was sized from (its notional ÷ the size fraction it decided, with the
runner's headroom), so quantities compare. The fee is the one the venue charged the bot's first fill.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.backtest.run_lifecycle import create_run
from core.backtest.run_params import RunInputError, RunRequest, count_candles
from core.backtest.trade_compare import (
    PRICE_TOLERANCE_BPS,
    QTY_TOLERANCE,
    SLIPPAGE_BPS,
    Comparison,
    LiveFill,
    backtest_trades,
    compare,
    live_trades,
    rule_of,
)
from core.bots.runner import PRICE_HEADROOM
from core.candles.candle import timeframe_ms
from core.models import BacktestRun, Bot, BotTick, Fill, Order
from core.strategies.contract import format_candle_time

DEFAULT_FEE = Decimal("0.001")  # before the bot's first fill tells the venue's: the usual spot taker fee
DEFAULT_CASH = Decimal("10000")


class LiveBacktestError(ValueError):
    """Why this bot's live period cannot be backtested (yet); the message says it to the trader."""


@dataclass(frozen=True)
class LivePeriod:
    first_decision_ms: int  # open time of the first candle the bot decided on
    start_ms: int  # the backtest's first candle: candles_needed before the first decision
    end_ms: int

    @property
    def label(self) -> str:
        return f"{format_candle_time(self.first_decision_ms)} → {format_candle_time(self.end_ms)}"


def wall_ms(moment: datetime) -> int:
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def bot_fills(session: Session, bot_id: int, clock: Callable[[datetime], int] = wall_ms) -> list[LiveFill]:
    """Every fill of the bot's orders, timed by `clock` (a replay's market time in bench parity)."""
    rows = session.execute(
        select(Fill, Order.type)
        .join(Order, Fill.order_id == Order.id)
        .where(Order.source == "bot", Order.source_ref == str(bot_id))
    ).all()
    return [
        LiveFill(fill.side, order_type, clock(fill.traded_at), fill.price, fill.quantity, fill.order_id or 0)
        for fill, order_type in rows
    ]


def live_period(session: Session, bot: Bot, now_ms: int) -> LivePeriod:
    first = session.scalar(select(func.min(BotTick.candle_time)).where(BotTick.bot_id == bot.id))
    if first is None:
        raise LiveBacktestError("this bot has not decided on any candle yet: start it, and backtest it once it has")
    span = timeframe_ms(bot.timeframe)
    if not count_candles(session, bot.source_venue, bot.source_symbol, bot.timeframe, first, now_ms):
        raise LiveBacktestError(
            f"no {bot.source_symbol} {bot.timeframe} candles from {bot.source_venue} since the bot's first decision "
            f"({format_candle_time(first)}) in the database yet: the heartbeat has not stored any"
        )
    return LivePeriod(first, first - (bot.candles_needed - 1) * span, now_ms)


def _fee_rate(session: Session, bot_id: int) -> Decimal:
    fill = session.scalar(
        select(Fill)
        .join(Order, Fill.order_id == Order.id)
        .where(Order.source == "bot", Order.source_ref == str(bot_id), Fill.fee > 0)
        .order_by(Fill.traded_at)
        .limit(1)
    )
    if fill is None or fill.quantity <= 0:
        return DEFAULT_FEE
    in_base = fill.fee_asset is not None and fill.symbol.startswith(fill.fee_asset)
    return (fill.fee / fill.quantity if in_base else fill.fee / (fill.quantity * fill.price)).quantize(Decimal("1e-6"))


def _cash(session: Session, bot_id: int, first_decision_ms: int) -> Decimal:
    """The free quote the first entry after the first decision was sized from."""
    entry = session.execute(
        select(BotTick.decision, Order.filled_quantity, Order.average_price)
        .join(Order, Order.id == BotTick.order_ids[0].as_integer())
        .where(BotTick.bot_id == bot_id, BotTick.action == "enter", BotTick.candle_time >= first_decision_ms)
        .order_by(BotTick.candle_time)
        .limit(1)
    ).first()
    if entry is None or not entry.average_price or not entry.filled_quantity:
        return DEFAULT_CASH
    fraction = Decimal(str((entry.decision or {}).get("size_fraction") or 1))
    return (entry.filled_quantity * entry.average_price * (1 + PRICE_HEADROOM) / fraction).quantize(Decimal("0.01"))


def start(session: Session, user_id: int, bot: Bot, now_ms: int) -> BacktestRun:
    """Record the backtest run of the bot's live period (queued; the caller enqueues it)."""
    if bot.strategy_version_id is None:
        raise LiveBacktestError("the bot's strategy version was deleted: nothing to backtest")
    period = live_period(session, bot, now_ms)
    request = RunRequest(
        strategy_version_id=bot.strategy_version_id,
        venue=bot.source_venue,
        symbol=bot.source_symbol,
        timeframe=bot.timeframe,
        start_ms=period.start_ms,
        end_ms=now_ms,
        fee=_fee_rate(session, bot.id),
        slippage_bps=Decimal(str(SLIPPAGE_BPS)),
        cash=_cash(session, bot.id, period.first_decision_ms),
        params=dict(bot.params or {}),
    )
    try:
        return create_run(session, user_id, request)
    except RunInputError as exc:
        raise LiveBacktestError(str(exc)) from exc


def belongs(bot: Bot, run: BacktestRun) -> bool:
    """Is this run a backtest of this bot's live period (its version, source and timeframe)?"""
    return (run.strategy_version_id, run.venue, run.symbol, run.timeframe, run.kind) == (
        bot.strategy_version_id,
        bot.source_venue,
        bot.source_symbol,
        bot.timeframe,
        "single",
    ) and run.start_ms is not None


@dataclass(frozen=True)
class BotParity:
    period: LivePeriod
    comparison: Comparison
    live_pnl: float
    backtest_pnl: float

    @property
    def rows(self) -> list[dict]:
        """Each pair with the METRICS.md rule of each difference."""
        return [{**row, "rules": [rule_of(d) for d in row["differences"]]} for row in self.comparison.rows]


def run_period(bot: Bot, run: BacktestRun) -> LivePeriod:
    """The live period a run of this bot covers (its first candle is `candles_needed` before the first decision)."""
    assert run.start_ms is not None and run.end_ms is not None
    return LivePeriod(run.start_ms + (bot.candles_needed - 1) * timeframe_ms(bot.timeframe), run.start_ms, run.end_ms)


def compare_run(session: Session, bot: Bot, run: BacktestRun) -> BotParity:
    """The bot's live trades beside a finished run of its live period, paired one by one."""
    span = timeframe_ms(bot.timeframe)
    period = run_period(bot, run)
    after_first = period.first_decision_ms + span  # the first fill a decision can make is in the next candle
    live = [t for t in live_trades(bot_fills(session, bot.id), span) if after_first <= t.entry_ms <= period.end_ms]
    for trade in live:
        if trade.exit_ms is not None and trade.exit_ms > period.end_ms:  # sold after the run's end: open then
            trade.exit_ms, trade.exit_price, trade.exit_reason = None, None, "open"
    tested = [t for t in backtest_trades(run.trades or []) if t.entry_ms >= after_first]
    comparison = compare(live, tested, price_tolerance_bps=PRICE_TOLERANCE_BPS, qty_tolerance=QTY_TOLERANCE)
    return BotParity(period, comparison, _pnl(live), _pnl(tested))


def _pnl(trades: list) -> float:
    """Gross P&L of the closed round trips (fees apart: the ledger and the backtest charge them differently)."""
    return round(sum((t.exit_price - t.entry_price) * t.quantity for t in trades if t.exit_price is not None), 2)
