"""The position and P&L of one bot or one webhook on one symbol, as every caller asks it (the Bots page,
the bot's tick, the webhooks' close and protection, flatten, venue exits): the FIFO book the Statistics
page matches for that source, read whole (no date range)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from sqlalchemy.orm import Session

from core.ledger.entries import LedgerFill, Source, usable
from core.ledger.fifo import Book, one_book
from core.ledger.fills import PRECISION, ZERO
from core.ledger.loading import load_source
from core.models import Webhook


@dataclass(frozen=True)
class Position:
    """What one book holds: signed quantity (> 0 long; < 0 only for a deliberate short sale, never for
    base-fee dust), the cost of its open lots per unit (fees included), realised P&L and fees in quote."""

    quantity: Decimal = ZERO
    entry_price: Decimal | None = None
    entry_time: datetime | None = None
    realized_pnl: Decimal = ZERO
    fees_quote: Decimal = ZERO  # every fee valued in quote at its fill's price (other assets: unvalued)
    unvalued_fees: tuple[tuple[str, Decimal], ...] = ()  # (asset, amount) of fees with no price in quote
    fills: int = 0
    problems: tuple[str, ...] = ()  # fills left out (ledger_problem), as the Statistics page lists them

    def unrealized_pnl(self, price: Decimal | None) -> Decimal | None:
        if price is None:
            return None
        if self.entry_price is None:
            return ZERO
        return (price - self.entry_price) * self.quantity


def position_from_fills(fills: Iterable[LedgerFill]) -> Position:
    """The position of one source's fills on one symbol, matched FIFO as one book (as the Statistics
    page's book for that broker, symbol and source: `aristobot ledger check` tells when they differ)."""
    good, problems = usable(fills)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return _position(one_book(good) if good else None, good, problems)


def _position(book: Book | None, fills: list[LedgerFill], problems: list[str]) -> Position:
    valued, unvalued = ZERO, dict[str, Decimal]()
    for fill in fills:
        value = fill.fee_in_quote
        if value is not None:
            valued += value
        elif fill.fee_asset is not None:
            unvalued[fill.fee_asset] = unvalued.get(fill.fee_asset, ZERO) + fill.fee
    if book is None:
        return Position(problems=tuple(problems))
    quantity = book.quantity
    entry = -book.open_cash / quantity if quantity else None
    return Position(
        quantity,
        entry,
        book.lots[0].opened_at if book.lots else None,
        book.realised,
        valued,
        tuple(sorted(unvalued.items())),
        len(fills),
        tuple(problems),
    )


def bot_position(session: Session, bot_id: int, symbol: str) -> Position:
    return position_from_fills(load_source(session, Source("bot", str(bot_id)), symbol))


def webhook_position(session: Session, webhook_id: int, symbol: str) -> Position:
    return position_from_fills(load_source(session, Source("webhook", str(webhook_id)), symbol))


def net_position(session: Session, webhook: Webhook, symbol: str) -> Decimal:
    """What this webhook's orders hold on `symbol` (a base-asset fee is not held: closing or protecting
    must not try to sell it)."""
    return webhook_position(session, webhook.id, symbol).quantity
