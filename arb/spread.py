"""Spreads between two venues' books at the configured size, and the entry/exit decision.

For a direction "long L, short S" (buy on the cheap venue L, sell on the rich venue S):
- entry_bps = (VWAP to sell on S - VWAP to buy on L) / mid - both taker fees: the net edge of opening now;
- exit_bps = (VWAP to buy back on S - VWAP to sell on L) / mid + both taker fees: the net cost of
  closing a position of that direction now (what is left of the gap, plus fees).
Open when entry_bps >= the entry threshold; close when exit_bps <= the exit threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from core.exchanges.perp.book import OrderBook

BPS = Decimal(10_000)


def direction_name(long_venue: str, short_venue: str) -> str:
    return f"long_{long_venue}_short_{short_venue}"


def direction_venues(direction: str) -> tuple[str, str]:
    """(long venue, short venue) of a direction name."""
    long_part, short_part = direction.removeprefix("long_").split("_short_")
    return long_part, short_part


@dataclass(frozen=True, slots=True)
class Spreads:
    mid: Decimal
    entry_bps: dict[str, Decimal]  # direction -> net edge of opening
    exit_bps: dict[str, Decimal]  # direction -> net cost of closing
    vwaps: dict[str, tuple[Decimal, Decimal]]  # venue -> (sell vwap on bids, buy vwap on asks)

    def best_entry(self) -> tuple[str, Decimal]:
        return max(self.entry_bps.items(), key=lambda item: item[1])


class VwapCache:
    """Both VWAPs of each book, recomputed only for the book whose frame just arrived."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, float, bool]] = {}
        self._values: dict[str, tuple[Decimal, Decimal] | None] = {}

    def get(self, book: OrderBook, size: Decimal) -> tuple[Decimal, Decimal] | None:
        stamp = (id(book), book.updated_at, book.valid)
        if self._seen.get(book.venue) != stamp:
            sell, buy = book.vwap("SELL", size), book.vwap("BUY", size)  # None for an invalid book
            self._values[book.venue] = None if sell is None or buy is None else (sell, buy)
            self._seen[book.venue] = stamp
        return self._values[book.venue]


def compute_spreads(
    books: dict[str, OrderBook], size: Decimal, fees_bps: dict[str, Decimal], cache: VwapCache | None = None
) -> Spreads | None:
    """None when a book is invalid or too thin for `size` on either side."""
    cache = cache or VwapCache()
    vwaps: dict[str, tuple[Decimal, Decimal]] = {}
    for venue, book in books.items():
        pair = cache.get(book, size)
        if pair is None:
            return None
        vwaps[venue] = pair
    mid = sum(sell + buy for sell, buy in vwaps.values()) / (2 * len(vwaps))
    entry, exit_ = {}, {}
    for long_venue in vwaps:
        for short_venue in vwaps:
            if long_venue == short_venue:
                continue
            fees = fees_bps[long_venue] + fees_bps[short_venue]
            name = direction_name(long_venue, short_venue)
            entry[name] = (vwaps[short_venue][0] - vwaps[long_venue][1]) / mid * BPS - fees
            exit_[name] = (vwaps[short_venue][1] - vwaps[long_venue][0]) / mid * BPS + fees
    return Spreads(mid, entry, exit_, vwaps)


@dataclass(frozen=True, slots=True)
class Decision:
    action: Literal["enter", "exit"]
    direction: str
    spread_bps: Decimal


def decide(
    spreads: Spreads,
    *,
    position_direction: str | None,
    entry_threshold_bps: Decimal,
    exit_threshold_bps: Decimal,
    can_add: bool,
) -> Decision | None:
    """Exit a converged position first; otherwise enter (or add to) the best direction over threshold."""
    if position_direction is not None:
        cost = spreads.exit_bps[position_direction]
        if cost <= exit_threshold_bps:
            return Decision("exit", position_direction, cost)
        edge = spreads.entry_bps[position_direction]
        if can_add and edge >= entry_threshold_bps:
            return Decision("enter", position_direction, edge)
        return None
    if not can_add:
        return None
    direction, edge = spreads.best_entry()
    return Decision("enter", direction, edge) if edge >= entry_threshold_bps else None
