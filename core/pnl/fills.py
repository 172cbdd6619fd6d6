"""What one fill does to a position, in one place: the fee charged in the base asset, the change of
inventory (a buy of `q` with fee `f` in base delivers `q - f`; a sell of `q` with fee `f` in base
removes `q + f`), and the net quantity a run of fills leaves. The statistics (ledger.py, fifo.py),
a bot's position (core/bots/position.py) and a webhook's net position (core/webhooks/processing.py)
all count inventory through these."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

ZERO = Decimal(0)
PRECISION = 60  # significant digits of the P&L arithmetic; the ledger holds 18 decimal places


@dataclass(frozen=True)
class TradeFill:
    """A fill as a position sees it (ids and source aside)."""

    side: str  # buy | sell
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str | None
    traded_at: datetime | None = None


def base_fee(fee: Decimal, fee_asset: str | None, base: str | None) -> Decimal:
    """The part of a fee charged in the base asset (what the fill's inventory change carries)."""
    return fee if base is not None and fee_asset == base else ZERO


def inventory_change(side: str, quantity: Decimal, fee: Decimal, fee_asset: str | None, base: str | None) -> Decimal:
    """Base asset in (> 0) or out (< 0) of the account: the quantity traded, less a base-asset fee."""
    fee_in_base = base_fee(fee, fee_asset, base)
    return quantity - fee_in_base if side == "buy" else -(quantity + fee_in_base)


def net_quantity(fills: Iterable[TradeFill], base: str | None) -> Decimal:
    """Bought minus sold, base-asset fees excluded (they are not held): Σ inventory_change."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return sum((inventory_change(f.side, f.quantity, f.fee, f.fee_asset, base) for f in fills), ZERO)
