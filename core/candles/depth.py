"""A small order book per symbol (DEPTH_LEVELS a side) from the heartbeat venues' partial-depth streams, for the
Trading page's depth view. The feeds store the last one of each symbol (core.infra.bus.depth_key, with the time
it arrived); pages read it back (core.candles.marks) and never call a venue.

- Binance and the simulator: `<sym>@depth10`, a full snapshot `{lastUpdateId, bids, asks}` each second, inside a
  combined-stream frame whose stream name is the only place that names the symbol.
- Bitget: `books15`, a full snapshot each push (`{"action","arg":{instId},"data":[{asks, bids, seq, ts}]}`), cut
  to DEPTH_LEVELS.
- Kraken (v2): `book` with depth 10, a snapshot then updates (`{price, qty}` objects; qty 0 deletes a level; after
  each update the book is cut back to its depth, as the venue sends no delete for a level pushed out of range).

A message that cannot be read raises MalformedMessage and changes no book.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from core.candles.source_symbols import from_ws_symbol
from core.exchanges.spot.binance_klines import MalformedMessage

DEPTH_LEVELS = 10
DEPTH_FRESH_S = 5.0  # a stored book older than this is shown as stale (the streams push every 0.2-1 s)
BITGET_DEPTH_CHANNEL = "books15"  # Bitget's snapshots come in 1, 5 or 15 levels: the nearest above ours
BITGET_SNAPSHOT_CHANNELS = ("books1", "books5", BITGET_DEPTH_CHANNEL)  # each push a full snapshot, read alike

Level = tuple[Decimal, Decimal]  # (price, size)


@dataclass(frozen=True, slots=True)
class Depth:
    """One symbol's book as a venue pushed it: the best DEPTH_LEVELS bids (highest first) and asks (lowest first)."""

    venue: str
    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]

    def body(self, at_ms: int) -> str:
        """The JSON stored for the pages, stamped with the (wall clock) time it arrived."""
        sides = {side: [[str(p), str(q)] for p, q in getattr(self, side)] for side in ("bids", "asks")}
        return json.dumps({"venue": self.venue, "symbol": self.symbol, **sides, "at": at_ms}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Rung:
    """A level of the ladder: its size, the size from the best price down to it, and that total as a share (0-100)
    of the deeper side's total (the width of its bar)."""

    price: Decimal
    size: Decimal
    total: Decimal
    share: Decimal


@dataclass(frozen=True, slots=True)
class StoredDepth:
    """A book as the pages read it back, with the time it arrived at the feeds."""

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    at_ms: int

    def age_s(self, now: float | None = None) -> float:
        return max(0.0, (now if now is not None else time.time()) - self.at_ms / 1000)

    def stale(self, now: float | None = None) -> bool:
        return self.age_s(now) > DEPTH_FRESH_S

    @property
    def spread(self) -> Decimal | None:
        return self.asks[0][0] - self.bids[0][0] if self.bids and self.asks else None

    def ladder(self) -> tuple[list[Rung], list[Rung]]:
        """Bids and asks with their running totals, best price first."""
        bid_totals, ask_totals = _running(self.bids), _running(self.asks)
        deepest = max(bid_totals[-1:] + ask_totals[-1:], default=Decimal(0))
        return _rungs(self.bids, bid_totals, deepest), _rungs(self.asks, ask_totals, deepest)


def _running(levels: tuple[Level, ...]) -> list[Decimal]:
    out, total = [], Decimal(0)
    for _, size in levels:
        total += size
        out.append(total)
    return out


def _rungs(levels: tuple[Level, ...], totals: list[Decimal], deepest: Decimal) -> list[Rung]:
    return [
        Rung(price, size, total, (total / deepest * 100).quantize(Decimal("0.1")) if deepest else Decimal(0))
        for (price, size), total in zip(levels, totals, strict=True)
    ]


def read_stored(raw: str | bytes) -> StoredDepth:
    """What Depth.body wrote; ValueError (or KeyError, TypeError, InvalidOperation) when it is not that."""
    body = json.loads(raw)
    sides = [tuple((Decimal(p), Decimal(q)) for p, q in body[side]) for side in ("bids", "asks")]
    return StoredDepth(sides[0], sides[1], int(body["at"]))


# --- the venues' messages ---------------------------------------------------------------------------------------


def non_negative(value: Any, what: str) -> Decimal:
    """A venue's number (string or JSON number), finite and not negative; `what` names it in the error."""
    try:
        number = Decimal(str(value)) if isinstance(value, int | float | str | Decimal) else None
    except InvalidOperation:
        number = None
    if number is None or isinstance(value, bool) or not number.is_finite() or number < 0:
        raise MalformedMessage(f"{what} missing or not a non-negative number")
    return number


def _level(row: Any, side: str) -> Level:
    """`[price, size]` (Binance, Bitget) or `{"price", "qty"}` (Kraken)."""
    if isinstance(row, dict):
        pair = (row.get("price"), row.get("qty"))
    elif isinstance(row, list) and len(row) >= 2:
        pair = (row[0], row[1])
    else:
        raise MalformedMessage(f"a level of {side!r} is not [price, size] nor {{price, qty}}")
    price, size = non_negative(pair[0], f"{side} price"), non_negative(pair[1], f"{side} size")
    if price == 0:
        raise MalformedMessage(f"a {side} price is zero")
    return price, size


def _levels(rows: Any, side: str) -> list[Level]:
    if not isinstance(rows, list):
        raise MalformedMessage(f"field {side!r} missing or not a list")
    return [_level(row, side) for row in rows]


def _best(levels: list[Level] | dict[Decimal, Decimal], side: str) -> tuple[Level, ...]:
    """The DEPTH_LEVELS best levels with a size: highest bids, lowest asks."""
    pairs = levels.items() if isinstance(levels, dict) else levels
    return tuple(sorted((lv for lv in pairs if lv[1] > 0), reverse=side == "bids")[:DEPTH_LEVELS])


def _snapshot(venue: str, symbol: str, data: dict[str, Any]) -> Depth:
    bids, asks = _levels(data.get("bids"), "bids"), _levels(data.get("asks"), "asks")
    return Depth(venue, symbol, _best(bids, "bids"), _best(asks, "asks"))


def binance_partial(stream: str, data: Any, venue: str) -> Depth:
    """A combined-stream frame of `<sym>@depth<N>[@100ms]`: the symbol is the stream's."""
    symbol = stream.split("@", 1)[0].upper()
    if not symbol.isalnum() or len(symbol) > 32:
        raise MalformedMessage("the depth stream's name does not start with a symbol")
    if not isinstance(data, dict):
        raise MalformedMessage("depth data is not an object")
    return _snapshot(venue, symbol, data)


def bitget_books(message: dict[str, Any], symbol: str, venue: str) -> Depth:
    """A `books1|5|15` push: each is a full snapshot (the last one of the push counts)."""
    rows = message.get("data")
    if not isinstance(rows, list) or not rows or not isinstance(rows[-1], dict):
        raise MalformedMessage("books push without a 'data' list of objects")
    return _snapshot(venue, symbol, rows[-1])


class KrakenBooks:
    """Kraken's `book` channel: each symbol's book kept from its snapshot and the updates that follow."""

    def __init__(self, venue: str = "kraken") -> None:
        self.venue = venue
        self.books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}

    def apply(self, message: dict[str, Any]) -> list[Depth]:
        kind = message.get("type")
        if kind not in ("snapshot", "update"):
            raise MalformedMessage(f"book message type {str(kind)[:12]!r}, expected snapshot or update")
        rows = message.get("data")
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise MalformedMessage("book message without a 'data' list of objects")
        changes = []
        for row in rows:  # every row read before any book changes
            symbol = from_ws_symbol(self.venue, str(row.get("symbol", "")))
            if not symbol or not symbol.isalnum() or len(symbol) > 32:
                raise MalformedMessage("field 'symbol' missing or invalid")
            changes.append((symbol, _levels(row.get("bids"), "bids"), _levels(row.get("asks"), "asks")))
        out = []
        for symbol, bids, asks in changes:
            if kind == "snapshot":
                self.books[symbol] = ({}, {})
            book = self.books.get(symbol)
            if book is None:
                continue  # an update before its snapshot: nothing to apply it to
            for levels, side, name in ((bids, book[0], "bids"), (asks, book[1], "asks")):
                for price, size in levels:
                    if size == 0:
                        side.pop(price, None)
                    else:
                        side[price] = size
                kept = _best(side, name)
                side.clear()
                side.update(kept)
            out.append(Depth(self.venue, symbol, _best(book[0], "bids"), _best(book[1], "asks")))
        return out
