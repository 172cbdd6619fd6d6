"""Balances at the venue against what our fills imply (reconciliation, once per sweep of a connection).

The venue's balance of an asset is what the account held when reconciliation last agreed with it
(`venue_balances`: the baseline) plus what every fill since then moved, as the dashboard's equity counts it
(core.ledger.equity.fill_moves: the base asset by the held quantity, a fee in base not held; the quote by the
notional and a fee in quote, or one whose asset the venue did not name; any other fee asset by its fee).
A difference beyond dust was made outside Aristobot (a deposit, a withdrawal, a trade on a market we do not
follow): it is noted as a finding and told once. Either way
the venue's balance becomes the new baseline, so each change is reported once, and the fills to
explain are only those since the last sweep.

Taken in this order so that no fill falls between the two: the balances first (at time t), then the
trades synced into the ledger, then only the fills traded up to t are counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.exchanges.errors import ExchangeError
from core.exchanges.spot.base import Exchange
from core.infra.config import get_settings
from core.infra.db import utcnow
from core.ledger.entries import LedgerFill
from core.ledger.equity import Baseline, current_balances, fill_moves
from core.ledger.fills import ZERO
from core.models import Fill, VenueBalance

ABSOLUTE_DUST = Decimal("0.00000001")


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    totals: dict[str, Decimal]


@dataclass(frozen=True)
class Drift:
    asset: str
    venue: Decimal
    expected: Decimal
    since: datetime

    @property
    def difference(self) -> Decimal:
        return self.venue - self.expected


def snapshot(exchange: Exchange) -> Snapshot:
    at = utcnow()
    return Snapshot(at, {asset: balance.total for asset, balance in exchange.balances().items()})


def market_assets(exchange: Exchange) -> Callable[[str], tuple[str, str] | None]:
    """symbol -> (base, quote) from the venue's markets (cached per process); None when unknown."""

    def assets(symbol: str) -> tuple[str, str] | None:
        try:
            rules = exchange.rules(symbol)
        except ExchangeError:
            return None
        return rules.base, rules.quote

    return assets


def is_dust(difference: Decimal, venue: Decimal, expected: Decimal) -> bool:
    ratio = get_settings().file.reconciliation.balance_dust_ratio
    return abs(difference) <= max(ABSOLUTE_DUST, ratio * max(abs(venue), abs(expected)))


def compare(
    session: Session, broker_id: int, seen: Snapshot, assets_of: Callable[[str], tuple[str, str] | None]
) -> list[Drift]:
    """The drifts since the baseline (none on the first sweep: it only takes the baseline), then the
    snapshot becomes the baseline."""
    baselines = {
        row.asset: row for row in session.scalars(select(VenueBalance).where(VenueBalance.broker_id == broker_id))
    }
    drifts = []
    if baselines:
        since = min(row.at for row in baselines.values())
        fills = session.execute(
            select(
                Fill.id, Fill.symbol, Fill.side, Fill.quantity, Fill.price, Fill.fee, Fill.fee_asset, Fill.traded_at
            ).where(Fill.broker_id == broker_id, Fill.traded_at > since, Fill.traded_at <= seen.at)
        ).all()
        moves = [
            move
            for fill_id, symbol, side, quantity, price, fee, fee_asset, traded_at in fills
            if (assets := assets_of(symbol)) is not None
            for move in fill_moves(
                LedgerFill(
                    fill_id, broker_id, symbol, *assets, side, quantity, price, traded_at, fee or ZERO, fee_asset
                )
            )
        ]
        expected = current_balances([Baseline(row.asset, row.quantity, row.at) for row in baselines.values()], moves)
        for asset in sorted(set(baselines) | set(seen.totals)):
            start = baselines[asset].at if asset in baselines else since
            held, venue = expected.get(asset, ZERO), seen.totals.get(asset, ZERO)
            if not is_dust(venue - held, venue, held):
                drifts.append(Drift(asset, venue, held, start))
    rows = [
        {"broker_id": broker_id, "asset": asset, "quantity": seen.totals.get(asset, ZERO), "at": seen.at}
        for asset in set(baselines) | set(seen.totals)
    ]
    if rows:
        statement = insert(VenueBalance).values(rows)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["broker_id", "asset"],
                set_={"quantity": statement.excluded.quantity, "at": statement.excluded.at},
            )
        )
    return drifts
