"""The Statistics page's live part: the daily mark-to-market curve of the filtered view (core/ledger/daily.py)
drawn as cumulative P&L, daily P&L bars and drawdown (static/js/statistics_charts.js polls `charts.json`),
and the ten backtest metrics of that curve per strategy and per bot (core/ledger/live_metrics.py), each bot
beside the newest backtest of its live period (core/bots/live_backtest.py; never run by the page)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.bots import live_backtest
from core.candles.marks import StoredPrices
from core.ledger.daily import (
    DailyCurve,
    DayClose,
    ViewDays,
    midnight,
    stored_day_closes,
    view_days_of_books,
)
from core.ledger.entries import LedgerFill, Source
from core.ledger.fifo import Book, BookKey, MarkKey, RoundTrip
from core.ledger.live_metrics import LiveMetrics, live_metrics, metrics_of
from core.ledger.loading import load_source
from core.ledger.report import Range
from core.models import BacktestRun, Bot, Fill
from webapp.statistics_filters import Choices, Filters

BACKTEST_SHOWN = ("queued", "running", "done")


def charts_etag(session: Session, user_id: int, args: Mapping[str, str], today: date) -> str:
    """What the charts of this view depend on but the latest price: the trader's fills (how many, the newest),
    the filters and the day. A poll carrying it back is answered 304 (one cheap query instead of walking the
    ledger) until a fill arrives; the page's script leaves it out now and then to follow the price."""
    count, newest = session.execute(select(func.count(Fill.id), func.max(Fill.id)).where(Fill.user_id == user_id)).one()
    key = json.dumps([user_id, sorted(args.items()), count, newest, today.isoformat()])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Marks:
    """What the curve is marked at: each day's stored close, and the latest price for today."""

    today: date
    day_close: DayClose
    latest: Mapping[MarkKey, Decimal | None]


@dataclass(frozen=True)
class MetricRow:
    title: str
    quote: str
    metrics: LiveMetrics
    bot_id: int | None = None
    backtest: BacktestRun | None = None  # the newest run of the bot's live period, done or on its way
    period: str = ""  # that run's live period (first decision → end), whole UTC days
    period_metrics: LiveMetrics | None = None  # the bot's live metrics over that period


def load_marks(session: Session, fills: Sequence[LedgerFill], window: Range, venues: Mapping[int, str]) -> Marks:
    """The stored closes of the fills' (broker, symbol) pairs over the window's days, their latest prices."""
    today = datetime.now(UTC).date()
    first = window.start.date() if window.start else min((f.traded_at.date() for f in fills), default=today)
    last = today if window.end is None else min(today, (window.end - timedelta(days=1)).date())
    keys = {(f.broker_id, f.symbol) for f in fills}
    if not keys or last < first:
        return Marks(today, lambda _key, _day: None, {})
    day_close, latest = stored_day_closes(StoredPrices(session.connection()), venues, keys, first, last)
    return Marks(today, day_close, latest)


def days_of_books(books: Mapping[BookKey, Book], filters: Filters, marks: Marks) -> ViewDays:
    """days_of read from the kept ledger's books (core/ledger/cache.py): no fill matched again."""
    return view_days_of_books(books, filters.window, marks.today, marks.day_close, marks.latest, filters.side)


def chart_data(curves: Mapping[str, DailyCurve]) -> dict[str, dict[str, list]]:
    """Per quote asset: the cumulative P&L, each day's P&L and the drawdown, as lightweight-charts points
    (values as strings: Decimal digits reach the browser whole), and the symbols counted at cost."""
    return {
        quote: {
            "pnl": [{"time": p.time, "value": str(p.pnl)} for p in curve.points],
            "daily": [{"time": _time(day), "value": str(change)} for day, change in curve.changes()],
            "drawdown": [{"time": _time(day), "value": str(down)} for day, down in curve.drawdown()],
            "unmarked": curve.unmarked,
        }
        for quote, curve in sorted(curves.items())
    }


def _time(day: date) -> int:
    return int(datetime.combine(day, datetime.min.time(), tzinfo=UTC).timestamp())


def strategy_rows(view: ViewDays, trips: Sequence[RoundTrip], choices: Choices) -> list[MetricRow]:
    """One row per strategy (and quote asset) with fills in view: the curve of the bots it runs."""
    rows = []
    for strategy_id, name in choices.strategies.items():
        keys = {f"bot:{bot_id}" for bot_id in choices.strategy_bots.get(strategy_id, ())}
        rows.extend(_rows(name, keys, view, trips))
    return rows


def bot_rows(
    session: Session, user_id: int, view: ViewDays, trips: Sequence[RoundTrip], choices: Choices
) -> list[MetricRow]:
    """One row per bot of this trader (and quote asset) with fills in view; beside it the newest backtest of
    its live period and, once that is done, the bot's live metrics over the very same period."""
    rows = [
        MetricRow(row.title, row.quote, row.metrics, bot_id)
        for bot_id, name in choices.bots.items()
        for row in _rows(name, {f"bot:{bot_id}"}, view, trips)
    ]
    if not rows:
        return rows
    backtests = _backtests(session, user_id, {row.bot_id for row in rows if row.bot_id is not None})
    periods = {
        bot.id: _period_metrics(session, bot, run, choices.venues)
        for bot, run in backtests.values()
        if run.status == "done"
    }
    out = []
    for row in rows:
        bot_id = row.bot_id or 0
        run = backtests[bot_id][1] if bot_id in backtests else None
        label, metrics = periods.get(bot_id, ("", {}))
        out.append(MetricRow(row.title, row.quote, row.metrics, bot_id, run, label, metrics.get(row.quote)))
    return out


def _period_metrics(
    session: Session, bot: Bot, run: BacktestRun, venues: Mapping[int, str]
) -> tuple[str, dict[str, LiveMetrics]]:
    """The bot's live metrics over the live period of its backtest run: its own fills, whole UTC days from
    its first decision to the run's last candle."""
    period = live_backtest.run_period(bot, run)
    first, last = (datetime.fromtimestamp(ms / 1000, UTC).date() for ms in (period.first_decision_ms, period.end_ms))
    window = Range(midnight(first), midnight(last + timedelta(days=1)))
    fills = load_source(session, Source("bot", str(bot.id)), bot.symbol)
    marks = load_marks(session, fills, window, venues)
    label = f"{first.isoformat()} → {last.isoformat()}"
    return label, metrics_of(fills, window, marks.today, marks.day_close, marks.latest)


def _rows(title: str, keys: set[str], view: ViewDays, trips: Sequence[RoundTrip]) -> list[MetricRow]:
    """The metric rows (one per quote asset) of the books of these sources; none without any in view."""
    curves = view.curves(lambda key: key[2] in keys)
    own_trips = [t for t in trips if t.source.key in keys]
    return [MetricRow(title, quote, live_metrics(curve, own_trips)) for quote, curve in sorted(curves.items())]


def _backtests(session: Session, user_id: int, bot_ids: set[int]) -> dict[int, tuple[Bot, BacktestRun]]:
    """The newest run of each bot's live period (its version, source and timeframe) that is done or on
    its way; only this trader's bots and runs."""
    bots = session.scalars(select(Bot).where(Bot.user_id == user_id, Bot.id.in_(bot_ids))).all()
    runs = session.scalars(
        select(BacktestRun)
        .where(
            BacktestRun.user_id == user_id,
            BacktestRun.status.in_(BACKTEST_SHOWN),
            BacktestRun.strategy_version_id.in_({b.strategy_version_id for b in bots if b.strategy_version_id}),
        )
        .order_by(BacktestRun.created_at.desc(), BacktestRun.id.desc())
    ).all()
    found: dict[int, tuple[Bot, BacktestRun]] = {}
    for bot in bots:
        for run in runs:
            if live_backtest.belongs(bot, run) and run.start_ms is not None and run.end_ms is not None:
                found[bot.id] = (bot, run)
                break
    return found
