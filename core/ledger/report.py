"""The statistics page's report: realised, unrealised, fees and round-trip statistics per broker,
symbol, source and quote asset over a date range, the cumulative realised chart, and the trips CSV.
Fills the venue answered incompletely are left out of every number and listed with their reason."""

from __future__ import annotations

import csv
import io
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from typing import TypeVar

from core.ledger.entries import Classified, IncompleteFill, LedgerFill, classify
from core.ledger.fifo import (
    Book,
    BookKey,
    Closing,
    MarkKey,
    OpenPosition,
    RoundTrip,
    TripStats,
    book_key,
    match_books,
    open_position,
    round_trips,
    trip_stats,
)
from core.ledger.fills import PRECISION, ZERO

LEDGER_PLACES = Decimal("1e-18")
_Closed = TypeVar("_Closed", Closing, RoundTrip)


@dataclass
class Summary:
    """One row of a table: realised, unrealised, fees and round-trip statistics in one quote asset."""

    key: tuple
    title: str
    quote: str
    realised: Decimal = ZERO
    fees: Decimal = ZERO
    unvalued_fees: dict[str, Decimal] = field(default_factory=dict)
    unrealised: Decimal | None = ZERO  # None: an open position has no price
    open_positions: int = 0
    trips: TripStats = field(default_factory=TripStats)

    @property
    def total(self) -> Decimal | None:
        return None if self.unrealised is None else self.realised + self.unrealised


@dataclass(frozen=True)
class Range:
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive

    def __contains__(self, moment: datetime) -> bool:
        return (self.start is None or moment >= self.start) and (self.end is None or moment < self.end)


@dataclass
class Report:
    by_broker: list[Summary]
    by_symbol: list[Summary]
    by_source: list[Summary]
    totals: list[Summary]  # one per quote asset
    positions: list[OpenPosition]
    trips: list[RoundTrip]
    chart: dict[str, list[tuple[int, Decimal]]]  # quote -> [(unix second, cumulative realised)]
    problems: list[str]
    incomplete: list[IncompleteFill] = field(default_factory=list)  # left out of every number above


def build_report(
    fills: Iterable[LedgerFill],
    window: Range = Range(),
    marks: Mapping[MarkKey, Decimal | None] | None = None,
    broker_titles: Mapping[int, str] | None = None,
    side: str | None = None,
) -> Report:
    """Everything the statistics page shows, from ledger fills (those after `window.end` are ignored).
    `side` buy (sell) keeps long (short) round trips and positions and the fees of buys (sells)."""
    sorted_fills = classify(f for f in fills if window.end is None or f.traded_at < window.end)
    return report_of_books(sorted_fills, match_books(sorted_fills.usable), window, marks, broker_titles, side)


def report_of_books(
    sorted_fills: Classified,
    books: Mapping[BookKey, Book],
    window: Range = Range(),
    marks: Mapping[MarkKey, Decimal | None] | None = None,
    broker_titles: Mapping[int, str] | None = None,
    side: str | None = None,
) -> Report:
    """build_report of fills already sorted and matched (before `window.end`): core/ledger/cache.py."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return _build_report(sorted_fills, books, window, marks or {}, broker_titles or {}, side)


def _build_report(
    sorted_fills: Classified,
    books: Mapping[BookKey, Book],
    window: Range,
    marks: Mapping[MarkKey, Decimal | None],
    titles: Mapping[int, str],
    side: str | None,
) -> Report:
    direction = {"buy": "long", "sell": "short"}.get(side or "")
    good = sorted_fills.usable
    tables: dict[str, dict[tuple, Summary]] = {"broker": {}, "symbol": {}, "source": {}, "total": {}}

    def rows(book: Book) -> list[Summary]:
        keys = {
            "broker": ((book.broker_id, book.quote), titles.get(book.broker_id, f"#{book.broker_id}")),
            "symbol": ((book.broker_id, book.symbol), f"{book.symbol} · {titles.get(book.broker_id, '')}"),
            "source": ((book.source.key, book.quote), book.source.title),
            "total": ((book.quote,), "Total"),
        }
        return [tables[name].setdefault(key, Summary(key, title, book.quote)) for name, (key, title) in keys.items()]

    positions, trips = [], []
    counted: list[tuple[str, Closing]] = []
    for book in books.values():
        targets = rows(book)
        closings = [c for c in _inside(book.closings, window) if direction in (None, c.direction)]
        counted.extend((book.quote, c) for c in closings)
        realised = sum((c.pnl for c in closings), ZERO)
        book_trips = [t for t in _inside(round_trips(book), window) if direction in (None, t.direction)]
        stats = trip_stats(book_trips)
        position = open_position(book, marks)
        if position is not None and direction is not None and (position.quantity > 0) != (direction == "long"):
            position = None
        for row in targets:
            row.realised += realised
            row.trips = _merge(row.trips, stats)
            if position is not None:
                row.open_positions += 1
                unrealised = position.unrealised
                row.unrealised = None if unrealised is None or row.unrealised is None else row.unrealised + unrealised
        trips.extend(book_trips)
        if position is not None:
            positions.append(position)
    fees: dict[tuple[int, str, str], dict[str | None, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    start, end = window.start, window.end
    for fill in good:  # per book first: the tables' rows are looked up once per book, not per fill
        at = fill.traded_at
        if (start is None or at >= start) and (end is None or at < end) and side in (None, fill.side):
            value = fill.fee_in_quote
            if value is None and fill.fee_asset is None:
                raise ValueError("a fee with no asset is in quote: fee_in_quote never leaves it unvalued")
            asset, amount = (None, value) if value is not None else (fill.fee_asset, fill.fee)
            fees[book_key(fill)][asset] += amount
    for key, amounts in fees.items():
        for row in rows(books[key]):
            for asset, amount in amounts.items():
                if asset is None:
                    row.fees += amount
                else:
                    row.unvalued_fees[asset] = row.unvalued_fees.get(asset, ZERO) + amount
    trips.sort(key=lambda t: t.closed_at)
    return Report(
        by_broker=_sorted(tables["broker"]),
        by_symbol=_sorted(tables["symbol"]),
        by_source=_sorted(tables["source"]),
        totals=_sorted(tables["total"]),
        positions=sorted(positions, key=lambda p: (p.broker_id, p.symbol, p.source.key)),
        trips=trips,
        chart=cumulative_realised(counted),
        problems=sorted_fills.problems,
        incomplete=sorted_fills.incomplete,
    )


def _inside(items: Sequence[_Closed], window: Range) -> Sequence[_Closed]:
    """The items closed inside the window, of items in closing order (a book's closings, its trips)."""
    low = 0 if window.start is None else bisect_left(items, window.start, key=_closed_at)
    high = len(items) if window.end is None else bisect_left(items, window.end, key=_closed_at)
    return items[low:high]


def _closed_at(item: Closing | RoundTrip) -> datetime:
    return item.closed_at


def _merge(a: TripStats, b: TripStats) -> TripStats:
    return TripStats(
        a.count + b.count,
        a.wins + b.wins,
        a.losses + b.losses,
        a.gross_profit + b.gross_profit,
        a.gross_loss + b.gross_loss,
    )


def _sorted(table: dict[tuple, Summary]) -> list[Summary]:
    return sorted(table.values(), key=lambda row: (row.title, row.quote))


def cumulative_realised(closings: Iterable[tuple[str, Closing]]) -> dict[str, list[tuple[int, Decimal]]]:
    """Cumulative realised P&L per quote asset, one point per second with a closing (the chart's time
    axis wants strictly increasing times), starting from 0 a second before the first closing."""
    per_second: dict[str, dict[int, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for quote, closing in closings:
        per_second[quote][int(closing.closed_at.timestamp())] += closing.pnl
    series = {}
    for quote, points in per_second.items():
        seconds = sorted(points)
        running, line = ZERO, [(seconds[0] - 1, ZERO)]
        for second in seconds:
            running += points[second]
            line.append((second, running))
        series[quote] = line
    return series


TRIP_COLUMNS = (
    "closed_at",
    "opened_at",
    "broker",
    "symbol",
    "source",
    "direction",
    "quantity",
    "entry_price",
    "exit_price",
    "fees",
    "pnl",
    "quote",
)


def _csv(columns: tuple[str, ...], rows: Iterable[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def trips_csv(trips: Iterable[RoundTrip], broker_titles: Mapping[int, str]) -> str:
    return _csv(
        TRIP_COLUMNS,
        (
            [
                trip.closed_at.isoformat(),
                trip.opened_at.isoformat(),
                broker_titles.get(trip.broker_id, trip.broker_id),
                trip.symbol,
                trip.source.title,
                trip.direction,
                plain(trip.quantity),
                plain(trip.entry_price),
                plain(trip.exit_price),
                plain(trip.fees),
                plain(trip.pnl),
                trip.quote,
            ]
            for trip in trips
        ),
    )


FILL_COLUMNS = (
    "time",
    "venue",
    "broker",
    "symbol",
    "side",
    "quantity",
    "price",
    "fee",
    "fee_asset",
    "order_id",
    "trade_id",
    "source",
)


def fills_csv(fills: Iterable[LedgerFill], venues: Mapping[int, str], broker_titles: Mapping[int, str]) -> str:
    """The fills, one row each, with the columns a tax tool expects."""
    return _csv(
        FILL_COLUMNS,
        (
            [
                fill.traded_at.isoformat(),
                venues.get(fill.broker_id, ""),
                broker_titles.get(fill.broker_id, fill.broker_id),
                fill.symbol,
                fill.side,
                plain(fill.quantity),
                plain(fill.price),
                plain(fill.fee),
                fill.fee_asset or "",
                fill.order_id or "",
                fill.trade_id or "",
                fill.source.title,
            ]
            for fill in fills
        ),
    )


def plain(value: Decimal | None, places: Decimal = LEDGER_PLACES) -> str:
    """A Decimal at ledger precision without exponent or trailing zeros ('' for None)."""
    if value is None:
        return ""
    text = format(value.quantize(places), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
