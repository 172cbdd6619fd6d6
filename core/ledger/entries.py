"""The fill ledger as statistics see it: who placed each fill (its source), the fill with its base and
quote assets, its fee valued in quote and its cash flow, and why a row cannot be used."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from core.ledger.fills import ZERO, base_fee, inventory_change

KNOWN_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "TRY", "BRL", "BTC", "ETH", "BNB")


@dataclass(frozen=True)
class Source:
    """Who placed the orders of a book: manual, one webhook, one bot, oco, or none (fill without order)."""

    kind: str
    ref: str | None = None
    label: str = ""

    @property
    def key(self) -> str:
        return self.kind if self.ref is None else f"{self.kind}:{self.ref}"

    @property
    def title(self) -> str:
        return self.label or {"manual": "Manual", "oco": "OCO", "none": "No order"}.get(self.kind, self.key)


MANUAL = Source("manual")


class LedgerFill(NamedTuple):
    """One fill as the books see it (a named tuple: a rebuild makes one per fill, quickly)."""

    fill_id: int
    broker_id: int
    symbol: str
    base: str
    quote: str
    side: str  # buy | sell
    quantity: Decimal
    price: Decimal
    traded_at: datetime
    fee: Decimal = ZERO
    fee_asset: str | None = None
    order_id: int | None = None
    source: Source = MANUAL
    trade_id: str | None = None  # the venue's trade id (the fills CSV)

    @property
    def base_fee(self) -> Decimal:
        return base_fee(self.fee, self.fee_asset, self.base)

    @property
    def quote_fee(self) -> Decimal:
        return self.fee if self.fee_asset in (None, self.quote) else ZERO

    @property
    def fee_in_quote(self) -> Decimal | None:
        """The fee valued in quote: as is, or fee × price for a base fee; None for any other asset."""
        if self.fee == 0:
            return ZERO
        if self.fee_asset == self.base:
            return self.fee * self.price
        if self.fee_asset in (None, self.quote):
            return self.fee
        return None

    @property
    def inventory_change(self) -> Decimal:
        return inventory_change(self.side, self.quantity, self.fee, self.fee_asset, self.base)

    @property
    def cash_flow(self) -> Decimal:
        notional = self.quantity * self.price
        return (-notional if self.side == "buy" else notional) - self.quote_fee


def ledger_problem(fill: LedgerFill) -> str | None:
    """Why a ledger row cannot be used (None when it can): the page lists it instead of failing."""
    if fill.side not in ("buy", "sell"):
        return f"fill #{fill.fill_id}: unknown side {fill.side!r}"
    if fill.quantity <= 0 or fill.price <= 0:
        return f"fill #{fill.fill_id}: quantity and price must be positive"
    if fill.fee < 0:
        return f"fill #{fill.fill_id}: negative fee (rebates are not modelled)"
    if fill.side == "buy" and fill.base_fee >= fill.quantity:
        return f"fill #{fill.fill_id}: its {fill.base} fee takes the whole quantity"
    return None


@dataclass(frozen=True)
class IncompleteFill:
    """A fill the venue answered incompletely, and what it left out (the Statistics page lists it)."""

    fill: LedgerFill
    reason: str


def incomplete_reason(fill: LedgerFill) -> str | None:
    """What the venue left out of a fill (None when it answered fully): its price, its quantity, or the
    asset of a fee it charged. The price and quantity columns are NOT NULL: a missing one arrives as 0."""
    if fill.price <= 0:
        return "no price"
    if fill.quantity <= 0:
        return "no quantity"
    if fill.fee and not fill.fee_asset:
        return "fee without its asset"
    return None


@dataclass(frozen=True)
class Classified:
    """A statistics view's fills sorted once: those the books match, those the venue answered
    incompletely (left out of the totals, each with its reason), and rows with any other problem."""

    usable: list[LedgerFill]
    incomplete: list[IncompleteFill]
    problems: list[str]


def classify(fills: Iterable[LedgerFill]) -> Classified:
    good, incomplete, problems = [], [], []
    for fill in fills:
        reason = incomplete_reason(fill)
        if reason:
            incomplete.append(IncompleteFill(fill, reason))
        elif problem := ledger_problem(fill):
            problems.append(problem)
        else:
            good.append(fill)
    return Classified(good, incomplete, problems)


def usable(fills: Iterable[LedgerFill]) -> tuple[list[LedgerFill], list[str]]:
    """The fills a book can match, and why each other one cannot (the statistics page lists them)."""
    good, problems = [], []
    for fill in fills:
        problem = ledger_problem(fill)
        if problem:
            problems.append(problem)
        else:
            good.append(fill)
    return good, problems


def split_symbol(symbol: str) -> tuple[str, str]:
    """Base and quote of a symbol when the venue's rules are not stored: BTC-USD-PERP, BTC/USDT, BTCUSDT."""
    for separator in ("-", "/", "_"):
        if separator in symbol:
            base, quote = symbol.split(separator)[:2]
            return base, quote
    for quote in KNOWN_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol, "?"
