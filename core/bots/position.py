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
from core.pnl.fills import ZERO, TradeFill, base_fee, inventory_change


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


def position_from_fills(fills: Iterable[TradeFill], base_asset: str) -> BotPosition:
    """Average-cost accounting, long only (a sell beyond what the bot holds does not go short). A fee
    charged in the base asset (a spot buy) shrinks what is held (core.pnl.fills); one charged in quote
    (a spot sell) shrinks the proceeds."""
    quantity, cost, realized, fees, count = ZERO, ZERO, ZERO, ZERO, 0
    entry_time = None
    for fill in fills:
        count += 1
        fee_in_base = base_fee(fill.fee, fill.fee_asset, base_asset)
        quote_fee = fill.fee - fee_in_base  # any fee not in the base asset is taken as quote
        fees += fee_in_base * fill.price + quote_fee
        if fill.side == "buy":
            if quantity <= 0:
                entry_time = fill.traded_at
            quantity += inventory_change("buy", fill.quantity, fill.fee, fill.fee_asset, base_asset)
            cost += fill.quantity * fill.price + quote_fee
            continue
        sold = min(fill.quantity, quantity) if quantity > 0 else ZERO
        average = cost / quantity if quantity > 0 else ZERO
        realized += sold * fill.price - quote_fee - fee_in_base * fill.price - sold * average
        cost -= sold * average
        quantity -= sold
        if quantity <= 0:
            quantity, cost, entry_time = ZERO, ZERO, None
    entry = cost / quantity if quantity > 0 else None
    return BotPosition(quantity, entry, entry_time, realized, fees, count)


def bot_fills(session: Session, bot_id: int, symbol: str) -> list[TradeFill]:
    query = (
        select(Fill.side, Fill.quantity, Fill.price, Fill.fee, Fill.fee_asset, Fill.traded_at)
        .join(Order, Fill.order_id == Order.id)
        .where(Order.source == "bot", Order.source_ref == str(bot_id), Fill.symbol == symbol)
        .order_by(Fill.traded_at, Fill.id)
    )
    return [TradeFill(*row) for row in session.execute(query)]


def bot_position(session: Session, bot_id: int, symbol: str, base_asset: str) -> BotPosition:
    return position_from_fills(bot_fills(session, bot_id, symbol), base_asset)
