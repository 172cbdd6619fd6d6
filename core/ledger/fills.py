"""What one fill does to a position, in one place: the fee charged in the base asset and the change of
inventory (a buy of `q` with fee `f` in base delivers `q - f`; a sell of `q` with fee `f` in base
removes `q + f`). The ledger's books (entries.py, fifo.py) and the venue balances' check
(core/orders/venue_balances.py) count inventory through these."""

from __future__ import annotations

from decimal import Decimal

ZERO = Decimal(0)
PRECISION = 60  # significant digits of the P&L arithmetic; the ledger holds 18 decimal places


def base_fee(fee: Decimal, fee_asset: str | None, base: str | None) -> Decimal:
    """The part of a fee charged in the base asset (what the fill's inventory change carries)."""
    return fee if base is not None and fee_asset == base else ZERO


def inventory_change(side: str, quantity: Decimal, fee: Decimal, fee_asset: str | None, base: str | None) -> Decimal:
    """Base asset in (> 0) or out (< 0) of the account: the quantity traded, less a base-asset fee."""
    fee_in_base = base_fee(fee, fee_asset, base)
    return quantity - fee_in_base if side == "buy" else -(quantity + fee_in_base)
