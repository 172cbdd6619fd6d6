"""A bot's position and P&L, from our own fills ledger (never from the venue's balance, which the
trader shares with other bots and manual trades)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Fill, Order

ZERO = Decimal(0)


@dataclass(frozen=True)
class LedgerFill:
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str | None
    traded_at: datetime | None = None


@dataclass(frozen=True)
class BotPosition:
    """Long-only spot position: base held, its average entry (fees included) and the realized P&L in quote."""

    quantity: Decimal = ZERO
    entry_price: Decimal | None = None
    entry_time: datetime | None = None
    realized_pnl: Decimal = ZERO
    fees_quote: Decimal = ZERO  # every fee, valued in quote at its fill's price
    fills: int = 0

    def unrealized_pnl(self, price: Decimal | None) -> Decimal | None:
        if price is None or self.entry_price is None or self.quantity <= 0:
            return None if price is None else ZERO
        return (price - self.entry_price) * self.quantity


def position_from_fills(fills: Iterable[LedgerFill], base_asset: str) -> BotPosition:
    """Average-cost accounting. A fee charged in the base asset (a spot buy) shrinks what is held;
    one charged in quote (a spot sell) shrinks the proceeds."""
    quantity, cost, realized, fees, count = ZERO, ZERO, ZERO, ZERO, 0
    entry_time = None
    for fill in fills:
        count += 1
        base_fee = fill.fee if fill.fee_asset == base_asset else ZERO
        quote_fee = ZERO if fill.fee_asset == base_asset else fill.fee
        fees += base_fee * fill.price + quote_fee
        if fill.side == "buy":
            if quantity <= 0:
                entry_time = fill.traded_at
            quantity += fill.quantity - base_fee
            cost += fill.quantity * fill.price + quote_fee
            continue
        sold = min(fill.quantity, quantity) if quantity > 0 else ZERO
        average = cost / quantity if quantity > 0 else ZERO
        realized += sold * fill.price - quote_fee - base_fee * fill.price - sold * average
        cost -= sold * average
        quantity -= sold
        if quantity <= 0:
            quantity, cost, entry_time = ZERO, ZERO, None
    entry = cost / quantity if quantity > 0 else None
    return BotPosition(quantity, entry, entry_time, realized, fees, count)


def bot_fills(session: Session, bot_id: int, symbol: str) -> list[LedgerFill]:
    query = (select(Fill.side, Fill.quantity, Fill.price, Fill.fee, Fill.fee_asset, Fill.traded_at)
             .join(Order, Fill.order_id == Order.id)
             .where(Order.source == "bot", Order.source_ref == str(bot_id), Fill.symbol == symbol)
             .order_by(Fill.traded_at, Fill.id))
    return [LedgerFill(*row) for row in session.execute(query)]


def bot_position(session: Session, bot_id: int, symbol: str, base_asset: str) -> BotPosition:
    return position_from_fills(bot_fills(session, bot_id, symbol), base_asset)
