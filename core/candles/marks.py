"""Prices from what the heartbeat already stored, for pages that must not call a venue: the last top of book and
small book (Redis, written by the feeds on every book tick), the last closed 1m candle, and the closes of a timeframe
over a period (Postgres). Symbols of any venue are read on the heartbeat through the one symbol table; an
asset is priced in dollars (its dollar listing on the heartbeat; a dollar stablecoin is worth 1)."""

from __future__ import annotations

import json
import logging
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import redis
from sqlalchemy import Connection

from core.candles.candle import timeframe_ms
from core.candles.depth import StoredDepth, read_stored
from core.candles.source_symbols import UnknownMapping, map_symbol, symbol_on
from core.candles.sources import heartbeat
from core.candles.store import load_candles
from core.infra.bus import book_key, depth_key, get_redis

log = logging.getLogger(__name__)
DOLLARS = frozenset({"USD", "USDT", "USDC", "FDUSD", "BUSD", "DAI", "TUSD"})


@dataclass(frozen=True)
class Top:
    bid: Decimal
    ask: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


class StoredPrices:
    """Prices on the heartbeat venue, each read once per instance (one page view)."""

    def __init__(self, conn: Connection, client: redis.Redis | None = None) -> None:
        self.conn = conn
        self.venue = heartbeat().venue
        self._client = client
        self._latest: dict[str, Decimal | None] = {}

    def symbol_for(self, venue: str, symbol: str) -> str | None:
        """The heartbeat's symbol of a broker's market (None: the asset is not in the symbol table)."""
        try:
            return map_symbol(venue, symbol, self.venue)
        except UnknownMapping:
            return symbol if venue == self.venue else None

    def asset_symbol(self, asset: str) -> str | None:
        try:
            return symbol_on(self.venue, f"{asset}/USD")
        except UnknownMapping:
            return None

    def top(self, symbol: str) -> Top | None:
        try:
            raw = (self._client or get_redis()).get(book_key(self.venue, symbol))
            body = json.loads(raw) if raw else None
            return Top(Decimal(body["bid"]), Decimal(body["ask"])) if body else None
        except (redis.RedisError, ValueError, KeyError, InvalidOperation) as exc:
            log.warning("stored_top_unreadable", extra={"symbol": symbol, "error": str(exc)[:200]})
            return None

    def depth(self, symbol: str) -> StoredDepth | None:
        """The symbol's last small book (None: none stored, or it expired)."""
        try:
            raw = (self._client or get_redis()).get(depth_key(self.venue, symbol))
            return read_stored(raw) if raw else None
        except (redis.RedisError, ValueError, KeyError, TypeError, InvalidOperation) as exc:
            log.warning("stored_depth_unreadable", extra={"symbol": symbol, "error": str(exc)[:200]})
            return None

    def last_close(self, symbol: str) -> Decimal | None:
        last = load_candles(self.conn, self.venue, symbol, "1m", limit=1, newest=True)
        return last[-1].close if last else None

    def latest(self, symbol: str) -> Decimal | None:
        """The mid of the last top of book, else the last 1m close."""
        if symbol not in self._latest:
            top = self.top(symbol)
            self._latest[symbol] = top.mid if top else self.last_close(symbol)
        return self._latest[symbol]

    def close_at(self, symbol: str, at_ms: int) -> Decimal | None:
        """The close of the last 1m candle open at `at_ms`, else of the first one after it."""
        before = load_candles(self.conn, self.venue, symbol, "1m", end_ms=at_ms, limit=1, newest=True)
        found = before or load_candles(self.conn, self.venue, symbol, "1m", start_ms=at_ms, limit=1)
        return found[0].close if found else None

    def asset_now(self, asset: str) -> Decimal | None:
        if asset in DOLLARS:
            return Decimal(1)
        symbol = self.asset_symbol(asset)
        return self.latest(symbol) if symbol else None

    def asset_history(self, asset: str, timeframe: str, start_ms: int) -> Callable[[int], Decimal | None]:
        """The asset's price at an instant: the close of the last candle that had closed by then (before the
        first stored candle: that candle's close)."""
        if asset in DOLLARS:
            return lambda _time_ms: Decimal(1)
        symbol = self.asset_symbol(asset)
        length = timeframe_ms(timeframe)
        candles = load_candles(self.conn, self.venue, symbol, timeframe, start_ms=start_ms - length) if symbol else []
        ends = [c.open_time + length for c in candles]

        def at(time_ms: int) -> Decimal | None:
            index = bisect_right(ends, time_ms)
            return candles[max(index - 1, 0)].close if candles else None

        return at
