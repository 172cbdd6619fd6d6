"""The state the Vest and Paradex simulator faces share: one correlated market, and per venue a ledger.

Both venues quote one underlying mid (a random walk) with small independent noise, so their prices
are correlated; now and then one venue's mid is pushed away for 0.3-2 s (an injected spread) so the
arbitrage engine has something to find. Orders are IOC/market fills against the synthetic book of
that instant, or resting limits; positions and cash are kept per account. Independent of the
venue-neutral spot engine in sim/spot/engine.py.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal

Q = Decimal("0.01")
# The markets both faces list (Vest `<BASE>-PERP`, Paradex `<BASE>-USD-PERP`) and their starting mids: ten, so
# that the arbitrage engine can run ten pairs (`aristobot bench arb --pairs 10`).
BASE_PRICES = {
    "BTC": Decimal(60000),
    "ETH": Decimal(3000),
    "SOL": Decimal(150),
    "BNB": Decimal(600),
    "BCH": Decimal(400),
    "AAVE": Decimal(250),
    "LTC": Decimal(80),
    "MKR": Decimal(1500),
    "TAO": Decimal(400),
    "COMP": Decimal(50),
}
MAINTENANCE_RATE = Decimal("0.005")  # maintenance margin: 0.5 % of each position's notional at the mark


class CorrelatedMarket:
    """Mid prices for several venues around one random walk, with occasional injected spreads."""

    def __init__(
        self,
        venues: tuple[str, ...],
        base: dict[str, Decimal],
        *,
        seed: int | None = None,
        spread_every_s: tuple[float, float] = (4.0, 10.0),
        spread_bps: tuple[float, float] = (15, 40),
    ):
        self.venues = venues
        self._mid = {m: float(p) for m, p in base.items()}
        self._rng = random.Random(seed)
        self._noise = {v: 0.0 for v in venues}
        self._spread: dict[str, tuple[float, float]] = {}  # venue -> (bps, until)
        self._next_spread = time.monotonic() + self._rng.uniform(*spread_every_s)
        self.spread_every_s, self.spread_bps = spread_every_s, spread_bps
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def inject_spread(self, venue: str, bps: float, duration_s: float) -> None:
        with self._lock:
            self._spread[venue] = (bps, time.monotonic() + duration_s)

    def _advance(self) -> None:
        now = time.monotonic()
        steps = min(int((now - self._last) / 0.05), 40)
        for _ in range(steps):
            for m in self._mid:
                self._mid[m] *= 1 + self._rng.gauss(0, 0.00015)
            for v in self.venues:
                self._noise[v] = 0.8 * self._noise[v] + self._rng.gauss(0, 0.5)  # bps, mean-reverting
        if steps:
            self._last = now
        if now >= self._next_spread and self.spread_every_s[0] > 0:
            venue = self._rng.choice(self.venues)
            self._spread[venue] = (
                self._rng.choice((-1, 1)) * self._rng.uniform(*self.spread_bps),
                now + self._rng.uniform(0.3, 2.0),
            )
            self._next_spread = now + self._rng.uniform(*self.spread_every_s)
        for v, (_, until) in list(self._spread.items()):
            if now > until:
                del self._spread[v]

    @property
    def markets(self) -> tuple[str, ...]:
        return tuple(self._mid)

    def move(self, market: str, bps: Decimal) -> None:
        """A lasting step of the underlying (both venues' marks): the fault that liquidates a leg."""
        with self._lock:
            self._mid[market] *= 1 + float(bps) / 10_000

    def mid(self, venue: str, market: str) -> Decimal:
        with self._lock:
            self._advance()
            bps = self._noise[venue] + self._spread.get(venue, (0.0, 0.0))[0]
            return Decimal(str(round(self._mid[market] * (1 + bps / 10_000), 2)))


def synthetic_book(
    mid: Decimal, levels: int = 10, tick: Decimal = Q, unit: Decimal = Decimal("0.05")
) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    half = max(tick, (mid * Decimal("0.0001")).quantize(tick))
    bids = [((mid - half - tick * 5 * i).quantize(tick), unit * (i + 1)) for i in range(levels)]
    asks = [((mid + half + tick * 5 * i).quantize(tick), unit * (i + 1)) for i in range(levels)]
    return bids, asks


@dataclass
class SimOrder:
    id: str
    account: str
    market: str
    side: str
    size: Decimal
    price: Decimal | None
    order_type: str
    client_id: str = ""
    filled: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    status: str = "NEW"
    reduce_only: bool = False
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))


@dataclass
class SimAccount:
    cash: Decimal
    positions: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # market -> (size, entry)
    funding: dict[str, Decimal] = field(default_factory=dict)  # market -> funding settled on the open position


class PerpLedger:
    """Accounts, orders and fills of one simulated venue."""

    def __init__(self, venue: str, market: CorrelatedMarket):
        self.venue, self.market = venue, market
        self.accounts: dict[str, SimAccount] = {}
        self.orders: dict[str, SimOrder] = {}
        self._ids = 0

    def book(self, symbol: str):
        return synthetic_book(self.market.mid(self.venue, symbol))

    def next_id(self) -> str:
        self._ids += 1
        return f"{self._ids:x}".rjust(16, "0")

    def execute(self, order: SimOrder) -> SimOrder:
        """IOC/market: fill what the book gives within the limit; LIMIT GTC rests the remainder."""
        bids, asks = self.book(order.market)
        levels = asks if order.side == "BUY" else bids
        account = self.accounts[order.account]
        size, entry = account.positions.get(order.market, (Decimal(0), Decimal(0)))
        wanted = order.size
        if order.reduce_only:
            wanted = min(wanted, abs(size)) if (size < 0) == (order.side == "BUY") and size else Decimal(0)
        cost = Decimal(0)
        for price, available in levels:
            if wanted <= order.filled:
                break
            if order.price is not None and (price > order.price if order.side == "BUY" else price < order.price):
                break
            take = min(available, wanted - order.filled)
            order.filled += take
            cost += take * price
        if order.filled:
            order.avg_price = (cost / order.filled).quantize(Decimal("0.00000001"))
            self._apply_fill(
                account, order.market, order.filled if order.side == "BUY" else -order.filled, order.avg_price
            )
        if order.filled == order.size:
            order.status = "FILLED"
        elif order.order_type == "LIMIT" and order.client_id != "FOK":
            order.status = "OPEN" if not order.filled else "PARTIALLY_FILLED"
        else:
            order.status = "PARTIALLY_FILLED" if order.filled else "CANCELLED"
        self.orders[order.id] = order
        return order

    def _apply_fill(self, account: SimAccount, market: str, qty: Decimal, price: Decimal) -> None:
        size, entry = account.positions.get(market, (Decimal(0), Decimal(0)))
        new = size + qty
        if size == 0 or (size > 0) == (qty > 0):
            entry = (size * entry + qty * price) / new if new else Decimal(0)
        else:
            closed = min(abs(qty), abs(size))
            account.cash += closed * (price - entry) * (1 if size > 0 else -1)
            if (new > 0) != (size > 0) and new != 0:
                entry = price
        account.positions[market] = (new, entry if new else Decimal(0))
        if new == 0 or (size != 0 and (new > 0) != (size > 0)):
            account.funding.pop(market, None)  # a new position starts its own funding count

    def equity(self, account_id: str) -> Decimal:
        account = self.accounts[account_id]
        total = account.cash
        for market, (size, entry) in account.positions.items():
            total += size * (self.market.mid(self.venue, market) - entry)
        return total

    def maintenance(self, account_id: str, leave_out: str | None = None) -> Decimal:
        """Maintenance margin of the account's positions at the mark (one market left out if asked)."""
        return sum(
            (
                abs(size) * self.market.mid(self.venue, market) * MAINTENANCE_RATE
                for market, (size, _) in self.accounts[account_id].positions.items()
                if size and market != leave_out
            ),
            Decimal(0),
        )

    def liquidation_price(self, account_id: str, market: str) -> Decimal | None:
        """The mark at which the account's equity meets its maintenance margin, the other marks unchanged
        (cross margin); None when no positive price liquidates it."""
        account = self.accounts[account_id]
        size, entry = account.positions.get(market, (Decimal(0), Decimal(0)))
        if not size:
            return None
        others = self.equity(account_id) - size * (self.market.mid(self.venue, market) - entry)
        price = (size * entry - others + self.maintenance(account_id, leave_out=market)) / (
            size - abs(size) * MAINTENANCE_RATE
        )
        return price.quantize(Q) if price > 0 else None

    def outside_fill(self, account_id: str, market: str, qty: Decimal) -> Decimal:
        """A position change nobody's order made (liquidation, ADL, a trade from the venue's own page), at the
        mark; returns the position after it."""
        account = self.accounts[account_id]
        if qty:
            self._apply_fill(account, market, qty, self.market.mid(self.venue, market))
        return account.positions.get(market, (Decimal(0), Decimal(0)))[0]

    def deleverage(self, account_id: str, market: str, qty: Decimal) -> Decimal:
        """ADL: the position shrinks by qty (at most to zero), closed against a liquidated counterparty."""
        size = self.accounts[account_id].positions.get(market, (Decimal(0), Decimal(0)))[0]
        cut = min(abs(qty), abs(size))
        return self.outside_fill(account_id, market, -cut if size > 0 else cut)

    def pay_funding(self, market: str, rate_bps: Decimal) -> None:
        """One funding settlement: at a positive rate longs pay shorts rate x notional at the mark."""
        mark = self.market.mid(self.venue, market)
        for account in self.accounts.values():
            size = account.positions.get(market, (Decimal(0), Decimal(0)))[0]
            if size:
                payment = -size * mark * rate_bps / 10_000
                account.cash += payment
                account.funding[market] = account.funding.get(market, Decimal(0)) + payment

    def liquidate_underwater(self) -> list[tuple[str, str, Decimal]]:
        """Close every position of each account whose equity fell to its maintenance margin, at the mark."""
        closed = []
        for account_id, account in self.accounts.items():
            if not any(size for size, _ in account.positions.values()):
                continue
            if self.equity(account_id) > self.maintenance(account_id):
                continue
            for market, (size, _) in list(account.positions.items()):
                if size:
                    self.outside_fill(account_id, market, -size)
                    closed.append((account_id, market, size))
        return closed
