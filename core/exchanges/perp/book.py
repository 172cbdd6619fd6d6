"""A perpetual market's order book and the feed that keeps it current (Vest, Paradex, simulators).

An `OrderBook` is built from snapshots and deltas; a delta whose sequence number skips one raises
`BookGap` and leaves the book unusable until the next snapshot, so a stale book is never priced.
`BookFeed` keeps one market's book alive over a venue's websocket: it reconnects and resubscribes
(a resync) on any gap, malformed frame or dropped connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from bisect import bisect_left, insort
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import islice
from types import MappingProxyType
from typing import Any, Literal

from core.exchanges.errors import ExchangeError, MalformedResponse

log = logging.getLogger(__name__)

Side = Literal["BUY", "SELL"]


class BookGap(Exception):
    """A delta does not follow the last applied sequence number: the book must be resynced."""


@dataclass(frozen=True)
class BookLevel:
    price: Decimal
    size: Decimal


_PAIR_ROWS = {list}
_ZERO = Decimal(0)


class _Interned(dict[Any, Decimal]):
    """text -> checked Decimal, filled on first sight. A book's prices sit on the tick grid and its
    sizes on the lot grid, so the same few hundred strings come back frame after frame: a dict hit
    instead of a Decimal parse and range check. Only str keys are kept (1 == 1.0 == True as keys),
    and the table is emptied when it gets big, so memory stays bounded."""

    def __init__(self, is_valid: Callable[[Decimal], bool], limit: int = 32768):
        super().__init__()
        self._is_valid = is_valid
        self._limit = limit

    def __missing__(self, text: Any) -> Decimal:
        value = Decimal(str(text))  # InvalidOperation for anything but a number
        if not value.is_finite() or not self._is_valid(value):
            raise ValueError(f"out of range: {text!r:.40}")
        if type(text) is str:
            if len(self) >= self._limit:
                self.clear()
            self[text] = value
        return value


_PRICES = _Interned(lambda price: price > 0)
_SIZES = _Interned(lambda size: size >= 0)


def _parse_level(row: Any, venue: str) -> tuple[Decimal, Decimal]:
    """One [price, size] or {"price", "size"} row, checked: the slow path, which names the bad row."""
    try:
        price, size = (
            (Decimal(str(row[0])), Decimal(str(row[1])))
            if isinstance(row, list | tuple)
            else (Decimal(str(row["price"])), Decimal(str(row["size"])))
        )
    except (InvalidOperation, KeyError, IndexError, TypeError, ValueError) as exc:
        raise MalformedResponse(f"bad book level {row!r:.80}", venue=venue) from exc
    if not price.is_finite() or not size.is_finite() or price <= 0 or size < 0:
        raise MalformedResponse(f"bad book level {row!r:.80}", venue=venue)
    return price, size


def parse_levels(rows: Any, *, venue: str) -> list[tuple[Decimal, Decimal]]:
    """[[price, size], ...] (strings or numbers) as Decimals; anything else is MalformedResponse.

    This runs on every websocket frame, so a side of [price, size] lists is read in one
    comprehension through the interned tables above (parsed and range-checked once per distinct
    string). Anything that fails there, and other row shapes ({"price", "size"} objects), take the
    per-row path, which accepts the same input and names the bad row."""
    if not isinstance(rows, list):
        raise MalformedResponse(f"book side is not a list: {rows!r:.80}", venue=venue)
    # One C-level pass over the row types, not isinstance per row: unpacking alone would also take
    # a 2-character string as a row.
    if {*map(type, rows)} <= _PAIR_ROWS:
        prices, sizes = _PRICES, _SIZES
        try:
            return [(prices[price], sizes[size]) for price, size in rows]
        except (InvalidOperation, TypeError, ValueError):
            pass
    return [_parse_level(row, venue) for row in rows]


class OrderBook:
    """One market's book. Each side is a {price: size} dict plus its prices in ascending order
    (kept with bisect on every change), so the best level is an index and a VWAP walk stops as soon
    as the size is filled. `bids` and `asks` are read-only views: change the book with apply_*."""

    __slots__ = (
        "venue",
        "market",
        "seq",
        "valid",
        "updated_at",
        "venue_ts_ms",
        "_bids",
        "_asks",
        "_bid_prices",
        "_ask_prices",
    )

    def __init__(self, venue: str, market: str) -> None:
        self.venue = venue
        self.market = market
        self.seq: int | None = None
        self.valid = False
        self.updated_at = 0.0  # time.monotonic() of the last applied frame
        self.venue_ts_ms: int | None = None
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self._bid_prices: list[Decimal] = []  # ascending: the best bid is the last
        self._ask_prices: list[Decimal] = []  # ascending: the best ask is the first

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.venue!r}, {self.market!r}, seq={self.seq}, valid={self.valid}, "
            f"bid={self.best_bid()}, ask={self.best_ask()})"
        )

    @property
    def bids(self) -> Mapping[Decimal, Decimal]:
        return MappingProxyType(self._bids)

    @property
    def asks(self) -> Mapping[Decimal, Decimal]:
        return MappingProxyType(self._asks)

    def apply_snapshot(
        self,
        bids: Iterable[tuple[Decimal, Decimal]],
        asks: Iterable[tuple[Decimal, Decimal]],
        seq: int | None = None,
        venue_ts_ms: int | None = None,
    ) -> bool:
        """Replace the book. A snapshot older than the book we hold is ignored (returns False)."""
        if seq is not None and self.valid and self.seq is not None and seq < self.seq:
            return False
        self._bids = {p: s for p, s in bids if s > 0}
        self._asks = {p: s for p, s in asks if s > 0}
        self._bid_prices = sorted(self._bids)
        self._ask_prices = sorted(self._asks)
        self._applied(seq, venue_ts_ms)
        return True

    def apply_delta(
        self,
        bids: Iterable[tuple[Decimal, Decimal]],
        asks: Iterable[tuple[Decimal, Decimal]],
        seq: int,
        venue_ts_ms: int | None = None,
    ) -> bool:
        """Patch levels (size 0 deletes). Returns False for a stale/duplicate frame; raises BookGap."""
        if not self.valid or self.seq is None:
            raise BookGap(f"{self.venue} {self.market}: delta {seq} without a snapshot")
        if seq <= self.seq:
            return False
        if seq != self.seq + 1:
            self.invalidate()
            raise BookGap(f"{self.venue} {self.market}: expected seq {self.seq + 1}, got {seq}")
        _patch(self._bids, self._bid_prices, bids)
        _patch(self._asks, self._ask_prices, asks)
        self._applied(seq, venue_ts_ms)
        return True

    def _applied(self, seq: int | None, venue_ts_ms: int | None) -> None:
        self.seq = seq
        self.venue_ts_ms = venue_ts_ms
        self.updated_at = time.monotonic()
        # A crossed book means we missed something: treat it like a gap rather than price from it.
        if self._bid_prices and self._ask_prices and self._bid_prices[-1] >= self._ask_prices[0]:
            bid, ask = self._bid_prices[-1], self._ask_prices[0]
            self.invalidate()
            raise BookGap(f"{self.venue} {self.market}: crossed book {bid} >= {ask}")
        self.valid = True

    def invalidate(self) -> None:
        self.valid = False
        self._bids, self._asks, self._bid_prices, self._ask_prices = {}, {}, [], []

    def best_bid(self) -> BookLevel | None:
        return BookLevel(self._bid_prices[-1], self._bids[self._bid_prices[-1]]) if self._bid_prices else None

    def best_ask(self) -> BookLevel | None:
        return BookLevel(self._ask_prices[0], self._asks[self._ask_prices[0]]) if self._ask_prices else None

    def _walk(self, side: Side) -> tuple[dict[Decimal, Decimal], Iterable[Decimal]]:
        """The side a taker on `side` consumes, and its prices best first."""
        if side == "BUY":
            return self._asks, self._ask_prices
        return self._bids, reversed(self._bid_prices)

    def levels(self, side: Literal["bids", "asks"], depth: int | None = None) -> list[BookLevel]:
        book_side, prices = self._walk("SELL" if side == "bids" else "BUY")
        return [BookLevel(p, book_side[p]) for p in islice(prices, depth)]

    def vwap(self, side: Side, size: Decimal) -> Decimal | None:
        """Average price to BUY (walking asks) or SELL (walking bids) `size`; None if too thin."""
        if size <= 0:
            raise ValueError("vwap size must be positive")
        if not self.valid:
            return None
        book_side, prices = self._walk(side)
        remaining, cost = size, _ZERO
        for price in prices:
            available = book_side[price]
            if available >= remaining:
                # Usually the top level alone covers the size (cost still zero): its price, no arithmetic.
                return (cost + remaining * price) / size if cost else price
            cost += available * price
            remaining -= available
        return None

    def worst_price(self, side: Side, size: Decimal) -> Decimal | None:
        """Price of the last level touched when taking `size` (a limit that would fill it all)."""
        book_side, prices = self._walk(side)
        remaining = size
        for price in prices:
            remaining -= book_side[price]
            if remaining <= 0:
                return price
        return None

    def age(self, now: float | None = None) -> float:
        """Seconds since the last applied frame (infinite if none yet)."""
        if not self.updated_at:
            return float("inf")
        return (time.monotonic() if now is None else now) - self.updated_at


def _patch(book_side: dict[Decimal, Decimal], prices: list[Decimal], levels: Iterable[tuple[Decimal, Decimal]]) -> None:
    """Apply one side of a delta to {price: size} and its ascending price list (size 0 deletes)."""
    for price, size in levels:
        if size > 0:
            if price not in book_side:
                insort(prices, price)
            book_side[price] = size
        elif book_side.pop(price, None) is not None:
            del prices[bisect_left(prices, price)]


OnBook = Callable[[OrderBook], Awaitable[None] | None]

BookSession = Callable[[OrderBook, Callable[[], Awaitable[None]]], Awaitable[None]]


class BookFeed:
    """Keeps one market's book current: runs the venue's websocket session, resyncs on any failure."""

    def __init__(
        self, book: OrderBook, session: BookSession, on_book: OnBook | None = None, reconnect_delay: float = 0.2
    ):
        self.book = book
        self._session = session
        self._on_book = on_book
        self._reconnect_delay = reconnect_delay
        self._ready = asyncio.Event()
        self.resyncs = 0
        self._task = asyncio.create_task(self._run(), name=f"book:{book.venue}:{book.market}")

    async def _notify(self) -> None:
        self._ready.set()
        if self._on_book is not None:
            result = self._on_book(self.book)
            if asyncio.iscoroutine(result):
                await result

    async def _run(self) -> None:
        while True:
            try:
                await self._session(self.book, self._notify)
                reason = "closed"
            except asyncio.CancelledError:
                raise
            except (BookGap, ExchangeError) as exc:
                reason = str(exc)
            except Exception as exc:  # connection refused/reset, protocol errors: resync all the same
                reason = f"{type(exc).__name__}: {exc}"
            self.book.invalidate()
            self._ready.clear()
            self.resyncs += 1
            log.warning(
                "book_resync", extra={"venue": self.book.venue, "market": self.book.market, "reason": reason[:200]}
            )
            await asyncio.sleep(self._reconnect_delay)

    async def wait_ready(self, timeout: float = 5.0) -> OrderBook:
        await asyncio.wait_for(self._ready.wait(), timeout)
        return self.book

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
