"""A trader's equity across every broker without asking a venue, and its curve.

Each broker's balances are those reconciliation last read (`venue_balances`, the baseline of its balance
check) moved by every fill of the ledger since: the base asset by the held quantity (a base fee is not
held), the quote by the fill's cash flow, any other fee asset by its fee — the moves
core/orders/venue_balances.py explains. The curve walks the same balances back through the fills and
values them at the heartbeat's stored closes of that time (core/candles/marks.py); dollar stablecoins
count 1. A change made outside Aristobot (a deposit) shows from the sweep that saw it on: before it, the
curve reads the balances as if it had always been there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial

from core.ledger.entries import LedgerFill
from core.ledger.fills import ZERO

CURVE_POINTS = 240  # at most this many points: the finest heartbeat timeframe that fits the span


@dataclass(frozen=True)
class Move:
    at: datetime
    asset: str
    delta: Decimal


@dataclass(frozen=True)
class Baseline:
    asset: str
    quantity: Decimal
    at: datetime


def fill_moves(fill: LedgerFill) -> list[Move]:
    moves = [Move(fill.traded_at, fill.base, fill.inventory_change), Move(fill.traded_at, fill.quote, fill.cash_flow)]
    if fill.fee and fill.fee_asset not in (None, fill.base, fill.quote):
        moves.append(Move(fill.traded_at, fill.fee_asset, -fill.fee))
    return moves


def current_balances(baselines: Sequence[Baseline], moves: Iterable[Move]) -> dict[str, Decimal]:
    """Each asset's baseline plus the moves after it; an asset first met in a fill starts at zero from the
    oldest baseline. No baseline at all: nothing is known (empty)."""
    if not baselines:
        return {}
    held = {b.asset: (b.quantity, b.at) for b in baselines}
    since = min(b.at for b in baselines)
    balances = {asset: quantity for asset, (quantity, _) in held.items()}
    for move in moves:
        start = held[move.asset][1] if move.asset in held else since
        if move.at > start:
            balances[move.asset] = balances.get(move.asset, ZERO) + move.delta
    return balances


Price = Callable[[str, int], Decimal | None]  # (asset, epoch ms) -> its price in dollars then, or None


def valued(balances: Mapping[str, Decimal], price: Callable[[str], Decimal | None]) -> tuple[Decimal, list[str]]:
    """The dollar value of balances, and the held assets no price values (left out of the total)."""
    total, unvalued = ZERO, []
    for asset, quantity in sorted(balances.items()):
        if quantity == 0:
            continue
        unit = price(asset)
        if unit is None:
            unvalued.append(asset)
        else:
            total += quantity * unit
    return total, unvalued


def curve(
    balances_now: Mapping[str, Decimal], moves: Sequence[Move], times_ms: Sequence[int], price: Price
) -> list[tuple[int, Decimal]]:
    """(time ms, equity) at each of `times_ms` (ascending): the balances of now less every move after that
    time, valued at that time's prices."""
    later = sorted(moves, key=lambda m: m.at, reverse=True)
    balances = dict(balances_now)
    points, index = [], 0
    for time_ms in sorted(times_ms, reverse=True):
        while index < len(later) and later[index].at.timestamp() * 1000 > time_ms:
            move = later[index]
            balances[move.asset] = balances.get(move.asset, ZERO) - move.delta
            index += 1
        total, _ = valued(balances, partial(_price_at, price, time_ms))
        points.append((time_ms, total))
    return points[::-1]


def _price_at(price: Price, time_ms: int, asset: str) -> Decimal | None:
    return price(asset, time_ms)


def curve_timeframe(span_ms: int, timeframes: Mapping[str, int]) -> str:
    """The finest timeframe drawing the span in at most CURVE_POINTS points (the coarsest one beyond)."""
    for name, length in sorted(timeframes.items(), key=lambda item: item[1]):
        if span_ms <= length * CURVE_POINTS:
            return name
    return max(timeframes, key=lambda name: timeframes[name])


@dataclass
class Equity:
    """Every broker's value now (None: its balances were never read), the assets left unvalued, the curve."""

    by_broker: dict[int, Decimal | None] = field(default_factory=dict)
    unvalued: list[str] = field(default_factory=list)
    points: list[tuple[int, Decimal]] = field(default_factory=list)
    timeframe: str = ""

    @property
    def total(self) -> Decimal:
        return sum((value for value in self.by_broker.values() if value is not None), ZERO)
