"""The live daily mark-to-market P&L curve of a statistics view, per quote asset: at the end of each UTC day,
the realised P&L of the closings inside the view's range so far plus the unrealised P&L of the positions
then open, marked at that day's close from the stored candles (today: at the heartbeat's latest price).

The books are the report's (core/ledger/report.py): the same fills, FIFO matching over the whole history,
the same `side` selection; so on the day the range ends (today) the curve's value is the report's net P&L
(realised + unrealised) when both mark at the same prices. A position without any stored close counts at
its cost (unrealised 0) and its symbol is named in `unmarked`; the curve never holds a gap or a NaN.

`capital` is the most the view's open positions cost at once (fees included, longs and shorts alike), the
base the live metrics take as starting cash (core/ledger/live_metrics.py, docs/METRICS.md).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, localcontext
from itertools import groupby

from core.candles.candle import TIMEFRAME_MS
from core.candles.marks import StoredPrices
from core.candles.sources import heartbeat
from core.candles.store import load_candles
from core.ledger.entries import LedgerFill, classify
from core.ledger.fifo import Book, MarkKey, book_key
from core.ledger.fills import PRECISION, ZERO
from core.ledger.report import Range

DAY = timedelta(days=1)
DAY_MS = 86_400_000
DayClose = Callable[[MarkKey, date], Decimal | None]  # (broker, symbol), day -> its close that day, or None


@dataclass(frozen=True)
class DayPoint:
    day: date
    realised: Decimal  # cumulative, closings inside the range up to this day's end
    unrealised: Decimal  # the positions open at this day's end, marked at its close

    @property
    def pnl(self) -> Decimal:
        return self.realised + self.unrealised

    @property
    def time(self) -> int:
        """The day's midnight, in unix seconds (the charts' time axis)."""
        return int(midnight(self.day).timestamp())


@dataclass
class DailyCurve:
    quote: str
    points: list[DayPoint] = field(default_factory=list)
    capital: Decimal = ZERO
    unmarked: list[str] = field(default_factory=list)  # symbols some day counted at cost (no stored close)
    days_in_market: int = 0  # days ending with an open position

    def changes(self) -> list[tuple[date, Decimal]]:
        """Each day's P&L: its value less the day before's (the first day: its value)."""
        previous, out = ZERO, []
        for point in self.points:
            out.append((point.day, point.pnl - previous))
            previous = point.pnl
        return out

    def drawdown(self) -> list[tuple[date, Decimal]]:
        """Each day's P&L below its running peak (<= 0; the peak starts at 0, the value before any fill)."""
        peak, out = ZERO, []
        for point in self.points:
            peak = max(peak, point.pnl)
            out.append((point.day, point.pnl - peak))
        return out


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def daily_curves(
    fills: Iterable[LedgerFill],
    window: Range,
    today: date,
    day_close: DayClose,
    latest: Mapping[MarkKey, Decimal | None],
    side: str | None = None,
) -> dict[str, DailyCurve]:
    """The view's curve per quote asset, one point per UTC day from the range's start (or the first fill's
    day) to its end or today, whichever comes first. `side` as build_report's."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        good = classify(f for f in fills if window.end is None or f.traded_at < window.end).usable
        if not good:
            return {}
        first = window.start.date() if window.start else min(f.traded_at for f in good).date()
        last = today if window.end is None else min(today, (window.end - DAY).date())
        if last < first:
            return {}
        days = [first + DAY * n for n in range((last - first).days + 1)]
        groups: dict[tuple[int, str, str], list[LedgerFill]] = defaultdict(list)
        for fill in sorted(good, key=lambda f: (f.traded_at, f.fill_id)):
            groups[book_key(fill)].append(fill)
        curves: dict[str, DailyCurve] = {}
        sums: dict[str, _Sums] = {}
        for group in groups.values():
            quote = group[0].quote
            curve = curves.setdefault(quote, DailyCurve(quote))
            _walk(group, window, days, today, day_close, latest, side, curve, sums.setdefault(quote, _Sums(len(days))))
        for quote, curve in curves.items():
            running, totals = ZERO, sums[quote]
            for day, gained, open_value in zip(days, totals.realised, totals.unrealised, strict=True):
                running += gained
                curve.points.append(DayPoint(day, running, open_value))
            curve.days_in_market = sum(totals.held)
            curve.capital = _peak(totals.cost_moves)
            curve.unmarked.sort()
        return curves


class _Sums:
    """One quote asset's books added up: realised gained and unrealised held each day, days with a
    position, and how the open positions' cost moved at each fill."""

    def __init__(self, days: int) -> None:
        self.realised = [ZERO] * days
        self.unrealised = [ZERO] * days
        self.held = [False] * days
        self.cost_moves: list[tuple[datetime, Decimal]] = []


def _walk(
    fills: Sequence[LedgerFill],
    window: Range,
    days: Sequence[date],
    today: date,
    day_close: DayClose,
    latest: Mapping[MarkKey, Decimal | None],
    side: str | None,
    curve: DailyCurve,
    sums: _Sums,
) -> None:
    """Match one book's fills (in order) day by day, adding its share to its quote asset's sums."""
    direction = {"buy": "long", "sell": "short"}.get(side or "")
    first = fills[0]
    book = Book(first.broker_id, first.symbol, first.base, first.quote, first.source)
    key: MarkKey = (book.broker_id, book.symbol)
    index, counted, cost = 0, 0, ZERO
    mark: Decimal | None = None
    for n, day in enumerate(days):
        end = midnight(day + DAY)
        while index < len(fills) and fills[index].traded_at < end:
            book.add(fills[index])
            now = abs(book.open_cash)
            sums.cost_moves.append((fills[index].traded_at, now - cost))
            cost, index = now, index + 1
        for closing in book.closings[counted:]:
            if closing.closed_at in window and direction in (None, closing.direction):
                sums.realised[n] += closing.pnl
        counted = len(book.closings)
        if not book.lots:
            continue
        quantity = book.quantity
        if direction is not None and (quantity > 0) != (direction == "long"):
            continue
        found = latest.get(key) if day == today else None
        found = day_close(key, day) if found is None else found
        mark = found if found is not None else mark
        sums.held[n] = True
        if mark is None:
            if book.symbol not in curve.unmarked:
                curve.unmarked.append(book.symbol)
            continue
        sums.unrealised[n] += quantity * mark + book.open_cash


def _peak(moves: list[tuple[datetime, Decimal]]) -> Decimal:
    """The most the positions cost at once: the running sum's peak, fills of one instant taken together."""
    level = peak = ZERO
    for _, together in groupby(sorted(moves, key=lambda move: move[0]), key=lambda move: move[0]):
        level += sum((delta for _, delta in together), ZERO)
        peak = max(peak, level)
    return peak


def stored_day_closes(
    prices: StoredPrices, venues: Mapping[int, str], keys: Iterable[MarkKey], first: date, last: date
) -> tuple[DayClose, dict[MarkKey, Decimal | None]]:
    """The heartbeat's stored close of each (broker, symbol) at the end of each day from `first` to `last`
    (the last candle closed by midnight, carried over days without one), and its latest price now."""
    timeframe = max((tf for tf in heartbeat().timeframes if TIMEFRAME_MS[tf] <= DAY_MS), key=TIMEFRAME_MS.__getitem__)
    length = TIMEFRAME_MS[timeframe]
    start_ms = int(midnight(first).timestamp() * 1000) - DAY_MS
    end_ms = int(midnight(last + DAY).timestamp() * 1000)
    closes: dict[MarkKey, tuple[list[int], list[Decimal]]] = {}
    latest: dict[MarkKey, Decimal | None] = {}
    for key in set(keys):
        symbol = prices.symbol_for(venues.get(key[0], ""), key[1])
        candles = (
            load_candles(prices.conn, prices.venue, symbol, timeframe, start_ms=start_ms, end_ms=end_ms)
            if symbol
            else []
        )
        closes[key] = ([c.open_time + length for c in candles], [c.close for c in candles])
        latest[key] = prices.latest(symbol) if symbol else None

    def close(key: MarkKey, day: date) -> Decimal | None:
        ends, values = closes.get(key, ([], []))
        found = bisect_right(ends, int(midnight(day + DAY).timestamp() * 1000))
        return values[found - 1] if found else None

    return close, latest
