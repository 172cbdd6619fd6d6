"""The small venue-neutral perpetuals interface the arbitrage engine uses (Vest, Paradex, simulators).

An `OrderBook` is built from snapshots and deltas; a delta whose sequence number skips one raises
`BookGap` and leaves the book unusable until the next snapshot, so a stale book is never priced.
`BookFeed` keeps one market's book alive over a venue's websocket: it reconnects and resubscribes
(a resync) on any gap, malformed frame or dropped connection.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import aiohttp

from core.exchanges.errors import ExchangeError, MalformedResponse, Unavailable

log = logging.getLogger(__name__)

Side = Literal["BUY", "SELL"]


class BookGap(Exception):
    """A delta does not follow the last applied sequence number: the book must be resynced."""


@dataclass(frozen=True)
class BookLevel:
    price: Decimal
    size: Decimal


def parse_levels(rows: Any, *, venue: str) -> list[tuple[Decimal, Decimal]]:
    """[[price, size], ...] (strings or numbers) as Decimals; anything else is MalformedResponse."""
    if not isinstance(rows, list):
        raise MalformedResponse(f"book side is not a list: {rows!r:.80}", venue=venue)
    out = []
    for row in rows:
        try:
            price, size = (Decimal(str(row[0])), Decimal(str(row[1]))) if isinstance(row, list | tuple) \
                else (Decimal(str(row["price"])), Decimal(str(row["size"])))
        except (InvalidOperation, KeyError, IndexError, TypeError, ValueError) as exc:
            raise MalformedResponse(f"bad book level {row!r:.80}", venue=venue) from exc
        if not price.is_finite() or not size.is_finite() or price <= 0 or size < 0:
            raise MalformedResponse(f"bad book level {row!r:.80}", venue=venue)
        out.append((price, size))
    return out


@dataclass
class OrderBook:
    venue: str
    market: str
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    seq: int | None = None
    valid: bool = False
    updated_at: float = 0.0  # time.monotonic() of the last applied frame
    venue_ts_ms: int | None = None

    def apply_snapshot(self, bids: Iterable[tuple[Decimal, Decimal]], asks: Iterable[tuple[Decimal, Decimal]],
                       seq: int | None = None, venue_ts_ms: int | None = None) -> bool:
        """Replace the book. A snapshot older than the book we hold is ignored (returns False)."""
        if seq is not None and self.valid and self.seq is not None and seq < self.seq:
            return False
        self.bids = {p: s for p, s in bids if s > 0}
        self.asks = {p: s for p, s in asks if s > 0}
        self._applied(seq, venue_ts_ms)
        return True

    def apply_delta(self, bids: Iterable[tuple[Decimal, Decimal]], asks: Iterable[tuple[Decimal, Decimal]],
                    seq: int, venue_ts_ms: int | None = None) -> bool:
        """Patch levels (size 0 deletes). Returns False for a stale/duplicate frame; raises BookGap."""
        if not self.valid or self.seq is None:
            raise BookGap(f"{self.venue} {self.market}: delta {seq} without a snapshot")
        if seq <= self.seq:
            return False
        if seq != self.seq + 1:
            self.invalidate()
            raise BookGap(f"{self.venue} {self.market}: expected seq {self.seq + 1}, got {seq}")
        for levels, book_side in ((bids, self.bids), (asks, self.asks)):
            for price, size in levels:
                if size > 0:
                    book_side[price] = size
                else:
                    book_side.pop(price, None)
        self._applied(seq, venue_ts_ms)
        return True

    def _applied(self, seq: int | None, venue_ts_ms: int | None) -> None:
        self.seq = seq
        self.venue_ts_ms = venue_ts_ms
        self.updated_at = time.monotonic()
        bid, ask = self.best_bid(), self.best_ask()
        # A crossed book means we missed something: treat it like a gap rather than price from it.
        if bid and ask and bid.price >= ask.price:
            self.invalidate()
            raise BookGap(f"{self.venue} {self.market}: crossed book {bid.price} >= {ask.price}")
        self.valid = True

    def invalidate(self) -> None:
        self.valid = False
        self.bids.clear()
        self.asks.clear()

    def best_bid(self) -> BookLevel | None:
        return BookLevel(max(self.bids), self.bids[max(self.bids)]) if self.bids else None

    def best_ask(self) -> BookLevel | None:
        return BookLevel(min(self.asks), self.asks[min(self.asks)]) if self.asks else None

    def levels(self, side: Literal["bids", "asks"], depth: int | None = None) -> list[BookLevel]:
        book_side = self.bids if side == "bids" else self.asks
        prices = sorted(book_side, reverse=(side == "bids"))[:depth]
        return [BookLevel(p, book_side[p]) for p in prices]

    def vwap(self, side: Side, size: Decimal) -> Decimal | None:
        """Average price to BUY (walking asks) or SELL (walking bids) `size`; None if too thin."""
        if size <= 0:
            raise ValueError("vwap size must be positive")
        if not self.valid:
            return None
        remaining, cost = size, Decimal(0)
        for level in self.levels("asks" if side == "BUY" else "bids"):
            take = min(remaining, level.size)
            cost += take * level.price
            remaining -= take
            if remaining == 0:
                return cost / size
        return None

    def worst_price(self, side: Side, size: Decimal) -> Decimal | None:
        """Price of the last level touched when taking `size` (a limit that would fill it all)."""
        remaining = size
        for level in self.levels("asks" if side == "BUY" else "bids"):
            remaining -= level.size
            if remaining <= 0:
                return level.price
        return None

    def age(self, now: float | None = None) -> float:
        """Seconds since the last applied frame (infinite if none yet)."""
        if not self.updated_at:
            return float("inf")
        return (time.monotonic() if now is None else now) - self.updated_at


@dataclass(frozen=True)
class PerpOrderRequest:
    market: str
    side: Side
    size: Decimal
    price: Decimal | None  # limit price, or the worst acceptable price for a MARKET order
    client_id: str
    order_type: Literal["MARKET", "LIMIT"] = "MARKET"
    reduce_only: bool = False
    time_in_force: Literal["IOC", "GTC"] = "IOC"

    def __post_init__(self) -> None:
        if self.side not in ("BUY", "SELL"):
            raise ValueError(f"side must be BUY or SELL, not {self.side!r}")
        if not isinstance(self.size, Decimal) or self.size <= 0:
            raise ValueError("size must be a positive Decimal")
        if self.price is not None and (not isinstance(self.price, Decimal) or self.price <= 0):
            raise ValueError("price must be a positive Decimal")
        if self.order_type == "LIMIT" and self.price is None:
            raise ValueError("a LIMIT order needs a price")


@dataclass(frozen=True)
class PerpOrderResult:
    venue: str
    order_id: str
    client_id: str
    status: str  # NEW, OPEN, FILLED, PARTIALLY_FILLED, CANCELLED, REJECTED
    filled_size: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class PerpPosition:
    venue: str
    market: str
    size: Decimal  # signed: positive long, negative short
    entry_price: Decimal | None
    unrealized_pnl: Decimal = Decimal(0)


@dataclass(frozen=True)
class PerpAccount:
    venue: str
    equity: Decimal
    available: Decimal


OnBook = Callable[[OrderBook], Awaitable[None] | None]


class PerpVenue(abc.ABC):
    name: str = ""

    @abc.abstractmethod
    async def connect_book(self, market: str, on_book: OnBook | None = None) -> BookFeed: ...

    @abc.abstractmethod
    async def place_order(self, req: PerpOrderRequest) -> PerpOrderResult: ...

    @abc.abstractmethod
    async def cancel_order(self, order_id: str) -> None: ...

    @abc.abstractmethod
    async def open_orders(self) -> list[PerpOrderResult]: ...

    @abc.abstractmethod
    async def positions(self) -> list[PerpPosition]: ...

    @abc.abstractmethod
    async def account(self) -> PerpAccount: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


# --- shared plumbing -----------------------------------------------------------------------------


class JsonHttp:
    """One keep-alive aiohttp session per venue; transport failures become `Unavailable`."""

    def __init__(self, base_url: str, venue: str, timeout: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.venue = venue
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def request(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
                      headers: dict | None = None) -> tuple[int, Any]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, connector=aiohttp.TCPConnector(limit=16, keepalive_timeout=60))
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        try:
            async with self._session.request(method, self.base_url + path, params=params, data=data,
                                             headers=hdrs) as resp:
                text = await resp.text()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Unavailable(f"{method} {path}: {type(exc).__name__}", venue=self.venue) from exc
        try:
            return status, (json.loads(text) if text else None)
        except ValueError as exc:
            if status >= 500:
                raise Unavailable(f"{method} {path}: HTTP {status}", venue=self.venue, code=status) from exc
            raise MalformedResponse(f"{method} {path}: non-JSON reply (HTTP {status})", venue=self.venue,
                                    code=status) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


BookSession = Callable[[OrderBook, Callable[[], Awaitable[None]]], Awaitable[None]]


class BookFeed:
    """Keeps one market's book current: runs the venue's websocket session, resyncs on any failure."""

    def __init__(self, book: OrderBook, session: BookSession, on_book: OnBook | None = None,
                 reconnect_delay: float = 0.2):
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
            log.warning("book_resync", extra={"venue": self.book.venue, "market": self.book.market,
                                              "reason": reason[:200]})
            await asyncio.sleep(self._reconnect_delay)

    async def wait_ready(self, timeout: float = 5.0) -> OrderBook:
        await asyncio.wait_for(self._ready.wait(), timeout)
        return self.book

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
