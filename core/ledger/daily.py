"""The live daily mark-to-market P&L curve of a statistics view, per quote asset: at the end of each UTC day,
the realised P&L of the closings inside the view's range so far plus the unrealised P&L of the positions
then open, marked at that day's close from the stored candles (today: at the heartbeat's latest price).

The books are the report's (core/ledger/report.py): the same fills, FIFO matching over the whole history,
the same `side` selection; so on the day the range ends (today) the curve's value is the report's net P&L
(realised + unrealised) when both mark at the same prices. A day without a stored close carries the last
one; a position with no close yet counts at its cost (unrealised 0) and its symbol is named in `unmarked`:
the curve never holds a gap or a NaN. `view_days` walks each book of the view once; `ViewDays.curves` adds
up any selection of books (the page's strategies and bots).

`capital` is the most the view's open positions cost at once (fees included, longs and shorts alike), the
base the live metrics take as starting cash (core/ledger/live_metrics.py, docs/METRICS.md).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, localcontext
from operator import attrgetter, itemgetter

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


BookKey = tuple[int, str, str]  # broker, symbol, source key (core/ledger/fifo.py book_key)


@dataclass
class BookDays:
    """One book's share of the curve: realised gained on each day (by index), the value of its open
    position at each day's end, the days it held one, how its open cost moved at each fill."""

    quote: str
    symbol: str
    gained: dict[int, Decimal] = field(default_factory=dict)
    open_value: dict[int, Decimal] = field(default_factory=dict)
    held: set[int] = field(default_factory=set)
    cost_moves: list[tuple[datetime, Decimal]] = field(default_factory=list)
    unmarked: bool = False


@dataclass(frozen=True)
class ViewDays:
    """Every book of a view walked day by day once; `curves` adds up any selection of them."""

    days: list[date]
    books: dict[BookKey, BookDays]

    def curves(self, keep: Callable[[BookKey], bool] = lambda _key: True) -> dict[str, DailyCurve]:
        """The curve per quote asset of the books `keep` selects (none selected: no curve)."""
        with localcontext() as ctx:
            ctx.prec = PRECISION
            chosen: dict[str, list[BookDays]] = defaultdict(list)
            for key, book in self.books.items():
                if keep(key):
                    chosen[book.quote].append(book)
            return {quote: self._curve(quote, books) for quote, books in chosen.items()}

    def _curve(self, quote: str, books: list[BookDays]) -> DailyCurve:
        curve = DailyCurve(quote)
        realised, held = ZERO, 0
        for n, day in enumerate(self.days):
            realised += sum((b.gained[n] for b in books if n in b.gained), ZERO)
            curve.points.append(
                DayPoint(day, realised, sum((b.open_value[n] for b in books if n in b.open_value), ZERO))
            )
            held += any(n in b.held for b in books)
        curve.days_in_market = held
        curve.capital = _peak([move for b in books for move in b.cost_moves])
        curve.unmarked = sorted({b.symbol for b in books if b.unmarked})
        return curve


def view_days(
    fills: Iterable[LedgerFill],
    window: Range,
    today: date,
    day_close: DayClose,
    latest: Mapping[MarkKey, Decimal | None],
    side: str | None = None,
) -> ViewDays:
    """Each book of the view matched day by day, one day per point from the range's start (or the first
    fill's day) to its end or today, whichever comes first. `side` as build_report's."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        good = classify(f for f in fills if window.end is None or f.traded_at < window.end).usable
        if not good:
            return ViewDays([], {})
        first = window.start.date() if window.start else min(f.traded_at for f in good).date()
        last = today if window.end is None else min(today, (window.end - DAY).date())
        if last < first:
            return ViewDays([], {})
        days = [first + DAY * n for n in range((last - first).days + 1)]
        groups: dict[BookKey, list[LedgerFill]] = defaultdict(list)
        for fill in sorted(good, key=lambda f: (f.traded_at, f.fill_id)):
            groups[book_key(fill)].append(fill)
        marks = _Marks(today, day_close, latest)
        return ViewDays(days, {key: _walk(group, window, days, marks, side) for key, group in groups.items()})


def view_days_of_books(
    books: Mapping[BookKey, Book],
    window: Range,
    today: date,
    day_close: DayClose,
    latest: Mapping[MarkKey, Decimal | None],
    side: str | None = None,
) -> ViewDays:
    """view_days of books already matched with their trace (one_book(traced=True), the kept ledger of
    core/ledger/cache.py, before `window.end`): the same days and sums, without matching again."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        starts = {key: book.trace[0][:2] for key, book in books.items() if book.trace}
        traced = sorted(starts, key=starts.__getitem__)  # in their first fill's order, as view_days groups them
        if not traced:
            return ViewDays([], {})
        first = window.start.date() if window.start else starts[traced[0]][0].date()
        last = today if window.end is None else min(today, (window.end - DAY).date())
        if last < first:
            return ViewDays([], {})
        days = [first + DAY * n for n in range((last - first).days + 1)]
        marks = _Marks(today, day_close, latest)
        return ViewDays(days, {key: _walk_traced(books[key], window, days, marks, side) for key in traced})


@dataclass(frozen=True)
class _Marks:
    today: date
    day_close: DayClose
    latest: Mapping[MarkKey, Decimal | None]

    def at(self, key: MarkKey, day: date) -> Decimal | None:
        found = self.latest.get(key) if day == self.today else None
        return self.day_close(key, day) if found is None else found


def _walk(
    fills: Sequence[LedgerFill], window: Range, days: Sequence[date], marks: _Marks, side: str | None
) -> BookDays:
    """Match one book's fills (in order) day by day."""
    direction = {"buy": "long", "sell": "short"}.get(side or "")
    first = fills[0]
    book = Book(first.broker_id, first.symbol, first.base, first.quote, first.source)
    out = BookDays(book.quote, book.symbol)
    key: MarkKey = (book.broker_id, book.symbol)
    index, counted, cost = 0, 0, ZERO
    mark: Decimal | None = None
    for n, day in enumerate(days):
        end = midnight(day + DAY)
        while index < len(fills) and fills[index].traded_at < end:
            book.add(fills[index])
            now = abs(book.open_cash)
            out.cost_moves.append((fills[index].traded_at, now - cost))
            cost, index = now, index + 1
        gained = sum(
            (c.pnl for c in book.closings[counted:] if c.closed_at in window and direction in (None, c.direction)), ZERO
        )
        if gained:
            out.gained[n] = gained
        counted = len(book.closings)
        quantity = book.quantity if book.lots else ZERO
        mark = _value_day(out, n, marks, key, day, mark, quantity, book.open_cash, direction)
    return out


def _value_day(
    out: BookDays,
    n: int,
    marks: _Marks,
    key: MarkKey,
    day: date,
    mark: Decimal | None,
    quantity: Decimal,
    open_cash: Decimal,
    direction: str | None,
) -> Decimal | None:
    """Day n's open position valued at the day's mark, or the last one known (returned for the next day).
    No lot open (a book's lots all go one way: they never sum to 0) or the other side: nothing held."""
    if not quantity or (direction is not None and (quantity > 0) != (direction == "long")):
        return mark
    found = marks.at(key, day)
    mark = found if found is not None else mark
    out.held.add(n)
    if mark is None:
        out.unmarked = True
    else:
        out.open_value[n] = quantity * mark + open_cash
    return mark


def _walk_traced(book: Book, window: Range, days: Sequence[date], marks: _Marks, side: str | None) -> BookDays:
    """_walk read from the book's trace and closings (both in time order, found by bisection) instead of
    matching its fills: a view costs its days, not its fills."""
    direction = {"buy": "long", "sell": "short"}.get(side or "")
    out = BookDays(book.quote, book.symbol)
    key: MarkKey = (book.broker_id, book.symbol)
    trace, closings = book.trace or [], book.closings
    index = 0
    counted = 0 if window.start is None else bisect_left(closings, window.start, key=_closed_at)  # none before
    mark: Decimal | None = None
    for n, day in enumerate(days):
        end = midnight(day + DAY)
        index = bisect_left(trace, end, lo=index, key=_traded_at)
        upto = bisect_left(closings, end, lo=counted, key=_closed_at)
        gained = sum(
            (c.pnl for c in closings[counted:upto] if c.closed_at in window and direction in (None, c.direction)),
            ZERO,
        )
        if gained:
            out.gained[n] = gained
        counted = upto
        quantity, open_cash = trace[index - 1][2:4] if index else (ZERO, ZERO)
        mark = _value_day(out, n, marks, key, day, mark, quantity, open_cash, direction)
    out.cost_moves = [(step[0], step[4]) for step in trace[:index]]
    return out


_traded_at = itemgetter(0)
_closed_at = attrgetter("closed_at")


def _peak(moves: list[tuple[datetime, Decimal]]) -> Decimal:
    """The most the positions cost at once: the running sum's peak, fills of one instant taken together."""
    level = peak = ZERO
    ordered = sorted(moves, key=itemgetter(0))
    index, count = 0, len(ordered)
    while index < count:  # a page sums tens of thousands of moves for each curve: a plain loop
        instant, together = ordered[index][0], ZERO
        while index < count and ordered[index][0] == instant:
            together += ordered[index][1]
            index += 1
        level += together
        if level > peak:
            peak = level
    return peak


def stored_day_closes(
    prices: StoredPrices, venues: Mapping[int, str], keys: Iterable[MarkKey], first: date, last: date
) -> tuple[DayClose, dict[MarkKey, Decimal | None]]:
    """The heartbeat's stored close of each (broker, symbol) at the end of each day from `first` to `last`
    (the last candle closed by midnight, carried over days without one), and its latest price now."""
    timeframe = max(
        (tf for tf in heartbeat().timeframes if TIMEFRAME_MS[tf] <= DAY_MS), key=TIMEFRAME_MS.__getitem__, default="1m"
    )
    length = TIMEFRAME_MS[timeframe]
    start_ms = int(midnight(first).timestamp() * 1000) - DAY_MS
    end_ms = int(midnight(last + DAY).timestamp() * 1000)
    per_symbol: dict[str, tuple[list[int], list[Decimal]]] = {}  # brokers trading one listing share its candles
    closes: dict[MarkKey, tuple[list[int], list[Decimal]]] = {}
    latest: dict[MarkKey, Decimal | None] = {}
    for key in set(keys):
        symbol = prices.symbol_for(venues.get(key[0], ""), key[1])
        if symbol is None:
            latest[key] = None
            continue
        if symbol not in per_symbol:
            candles = load_candles(prices.conn, prices.venue, symbol, timeframe, start_ms=start_ms, end_ms=end_ms)
            per_symbol[symbol] = ([c.open_time + length for c in candles], [c.close for c in candles])
        closes[key] = per_symbol[symbol]
        latest[key] = prices.latest(symbol)

    def close(key: MarkKey, day: date) -> Decimal | None:
        ends, values = closes.get(key, ([], []))
        found = bisect_right(ends, int(midnight(day + DAY).timestamp() * 1000))
        return values[found - 1] if found else None

    return close, latest
