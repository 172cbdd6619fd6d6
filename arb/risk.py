"""The arbitrage engine's risk decisions, pure (the watch that reads the venues is arb/risk_watch.py).

Per leg, the distance to liquidation: how far the mark may move against the leg before the venue liquidates
it, in percent of the mark. Per venue account, the margin ratio: maintenance margin over equity (1 is the
liquidation line). Each is compared with the thresholds of `arb.risk` in config.yaml: a warning tells the
admins, a reduction closes part of BOTH legs together. Legs of unequal size are repaired by reducing the
larger exposure to the smaller one, reduce-only, never by adding to a leg.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from arb.config import RiskConfig
from arb.pair import VENUES, ZERO
from core.exchanges.perp.book import Side
from core.exchanges.perp.venue import PerpAccount

WARN, REDUCE = "warn", "reduce"


@dataclass(frozen=True)
class LegRisk:
    venue: str
    size: Decimal
    mark: Decimal | None  # the mid of our book of that venue
    liquidation_price: Decimal | None  # the venue's figure

    @property
    def distance_pct(self) -> Decimal | None:
        if not self.size or self.liquidation_price is None or not self.mark:
            return None
        gap = self.mark - self.liquidation_price if self.size > 0 else self.liquidation_price - self.mark
        return gap / self.mark * 100


@dataclass(frozen=True)
class Alarm:
    level: str  # warn | reduce
    venue: str
    measure: str  # "distance to liquidation" | "margin ratio"
    value: Decimal
    threshold: Decimal

    @property
    def subject(self) -> str:
        return f"{self.venue} {self.measure}"


def alarms(legs: list[LegRisk], accounts: list[PerpAccount], cfg: RiskConfig) -> list[Alarm]:
    """Every leg and account past a threshold, the worse level first."""
    found = []
    for leg in legs:
        distance = leg.distance_pct
        if distance is None:
            continue
        if distance < cfg.reduce_distance_pct:
            found.append(Alarm(REDUCE, leg.venue, "distance to liquidation", distance, cfg.reduce_distance_pct))
        elif distance < cfg.warn_distance_pct:
            found.append(Alarm(WARN, leg.venue, "distance to liquidation", distance, cfg.warn_distance_pct))
    for account in accounts:
        ratio = account.margin_ratio
        if ratio is None:
            continue
        if ratio >= cfg.reduce_margin_ratio:
            found.append(Alarm(REDUCE, account.venue, "margin ratio", ratio, cfg.reduce_margin_ratio))
        elif ratio >= cfg.warn_margin_ratio:
            found.append(Alarm(WARN, account.venue, "margin ratio", ratio, cfg.warn_margin_ratio))
    return sorted(found, key=lambda a: a.level != REDUCE)


def repair(sizes: dict[str, Decimal]) -> list[tuple[str, Side, Decimal]]:
    """Reduce-only orders that make the legs delta-neutral again: the exposure on the side of the net is cut
    by the net, largest leg first, no leg past zero. After them the legs are of equal size (or flat)."""
    net = sum(sizes.values(), ZERO)
    if net == 0:
        return []
    side: Side = "SELL" if net > 0 else "BUY"
    remaining, orders = abs(net), []
    for venue in sorted((v for v in VENUES if sizes[v] and (sizes[v] > 0) == (net > 0)), key=lambda v: -abs(sizes[v])):
        qty = min(abs(sizes[venue]), remaining)
        orders.append((venue, side, qty))
        remaining -= qty
        if remaining == 0:
            break
    return orders


def reduction(sizes: dict[str, Decimal], step: Decimal) -> list[tuple[str, Side, Decimal]]:
    """Both legs of a hedged position reduced together by one step (or closed if smaller); nothing when the
    legs are not a hedge (repair() comes first)."""
    if sum(sizes.values(), ZERO) != 0 or not all(sizes[v] for v in VENUES):
        return []
    qty = min(step, abs(sizes[VENUES[0]]))
    return [(v, "SELL" if sizes[v] > 0 else "BUY", qty) for v in VENUES]


def apply(sizes: dict[str, Decimal], orders: list[tuple[str, Side, Decimal]]) -> dict[str, Decimal]:
    """The sizes after the orders filled."""
    after = dict(sizes)
    for venue, side, qty in orders:
        after[venue] += qty if side == "BUY" else -qty
    return after


def view(legs: list[LegRisk], accounts: list[PerpAccount], found: list[Alarm], checked_at: float) -> dict:
    """The risk part of the engine's status (the Arbitrage page)."""

    def text(value: Decimal | None, places: int) -> str | None:
        return None if value is None else str(round(value, places))

    levels = {a.subject: a.level for a in found}
    return {
        "checked_at": checked_at,
        "legs": {
            leg.venue: {
                "size": str(leg.size),
                "mark": text(leg.mark, 2),
                "liquidation_price": text(leg.liquidation_price, 2),
                "distance_pct": text(leg.distance_pct, 2),
                "level": levels.get(f"{leg.venue} distance to liquidation", "ok"),
            }
            for leg in legs
        },
        "accounts": {
            account.venue: {
                "equity": text(account.equity, 2),
                "maintenance_margin": text(account.maintenance_margin, 2),
                "margin_ratio": text(account.margin_ratio, 4),
                "level": levels.get(f"{account.venue} margin ratio", "ok"),
            }
            for account in accounts
        },
    }
