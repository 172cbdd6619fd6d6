"""FIFO lot matching of one book (broker × symbol × source), the round trips it closes, their
statistics, and the position left open (method: core/ledger/__init__.py)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from operator import attrgetter
from typing import NamedTuple

from core.ledger.entries import LedgerFill, Source
from core.ledger.fills import PRECISION, ZERO


@dataclass(slots=True)
class Lot:
    """An open piece of a position: signed quantity (> 0 long, < 0 short) and the cash that opened it."""

    fill_id: int
    opened_at: datetime
    price: Decimal
    quantity: Decimal
    cash: Decimal
    fees: Decimal  # fees valued in quote still attached to this lot (shown per round trip)


class Closing(NamedTuple):
    """One lot portion closed by one fill (a named tuple: a rebuild makes one per closing, quickly)."""

    fill_id: int
    order_id: int | None
    quantity: Decimal  # absolute
    direction: str  # long | short (of the lot)
    opened_at: datetime
    closed_at: datetime
    entry_price: Decimal
    exit_price: Decimal
    entry_cash: Decimal
    exit_cash: Decimal
    fees: Decimal

    @property
    def pnl(self) -> Decimal:
        return self.entry_cash + self.exit_cash


@dataclass
class Book:
    """One broker × symbol × source position, after matching its fills in order."""

    broker_id: int
    symbol: str
    base: str
    quote: str
    source: Source
    lots: deque[Lot] = field(default_factory=deque)
    closings: list[Closing] = field(default_factory=list)
    fee_dust: Decimal = ZERO  # base fees paid since the book was last flat or short, less the dust sold
    last_order: tuple[str, int | None] | None = None  # the order (or lone fill) of the last fill matched
    unheld: Decimal = ZERO  # base sold beyond the book's long within its fee dust (spot is never short)
    unheld_value: Decimal = ZERO  # that base valued at the prices it was sold at
    trips: list[RoundTrip] | None = None  # round_trips(book), kept until the next fill
    # one_book(traced=True): after each fill (time, fill id, quantity, open_cash, the change of what the
    # lots cost), what a day-by-day walk reads instead of matching the fills again (core/ledger/daily.py)
    trace: list[tuple[datetime, int, Decimal, Decimal, Decimal]] | None = None

    @property
    def quantity(self) -> Decimal:
        return sum((lot.quantity for lot in self.lots), ZERO)

    @property
    def open_cash(self) -> Decimal:
        return sum((lot.cash for lot in self.lots), ZERO)

    @property
    def realised(self) -> Decimal:
        return sum((closing.pnl for closing in self.closings), ZERO)

    def add(self, fill: LedgerFill) -> None:
        with localcontext() as ctx:
            ctx.prec = PRECISION
            self._add(fill)

    def _add(self, fill: LedgerFill) -> None:
        """Match one fill (at PRECISION). The hot loop of a rebuild: locals, no per-fill context."""
        self.trips = None
        change, cash = fill.inventory_change, fill.cash_flow
        fees = fill.fee_in_quote or ZERO
        buying = change > 0
        remaining = change if buying else -change
        lots, closings = self.lots, self.closings
        order = ("order", fill.order_id) if fill.order_id is not None else ("fill", fill.fill_id)
        # the lots of a book all go one way: it is flat or short when its first lot is not long
        if order != self.last_order and (not lots or lots[0].quantity < 0):
            self.fee_dust = ZERO  # a new order on a flat or short book: earlier fee dust is not in it
        self.last_order = order
        self.fee_dust += fill.base_fee
        fill_id, order_id, closed_at, price = fill.fill_id, fill.order_id, fill.traded_at, fill.price
        while remaining > 0 and lots and (lots[0].quantity > 0) != buying:
            lot = lots[0]
            long = lot.quantity > 0
            held = lot.quantity if long else -lot.quantity
            if remaining >= held:  # the whole lot closes: all of its cash and fees
                portion, lot_cash, lot_fees = held, lot.cash, lot.fees
                lots.popleft()
            else:
                portion = remaining
                lot_cash, lot_fees = lot.cash * portion / held, lot.fees * portion / held
                lot.quantity += -portion if long else portion
                lot.cash -= lot_cash
                lot.fees -= lot_fees
            fill_cash, fill_fees = _share(cash, portion, remaining), _share(fees, portion, remaining)
            closings.append(
                Closing(
                    fill_id,
                    order_id,
                    portion,
                    "long" if long else "short",
                    lot.opened_at,
                    closed_at,
                    lot.price,
                    price,
                    lot_cash,
                    fill_cash,
                    lot_fees + fill_fees,
                )
            )
            cash -= fill_cash
            fees -= fill_fees
            remaining -= portion
        dust = min(remaining, self.fee_dust) if not buying else ZERO
        if dust > 0:
            # A sell of the ordered quantity takes the base-fee dust the venue kept from this book's buys
            # beyond what the book holds: sold from the account's other inventory (entered at this fill's
            # price), never a short lot (spot is never short).
            value = dust * price
            dust_cash, dust_fees = _share(cash, dust, remaining), _share(fees, dust, remaining)
            entry = (closed_at, closed_at, price, price, -value, dust_cash, dust_fees)
            closings.append(Closing(fill_id, order_id, dust, "long", *entry))
            self.unheld += dust
            self.unheld_value += value
            self.fee_dust -= dust
            cash -= dust_cash
            fees -= dust_fees
            remaining -= dust
        if remaining > 0:
            lots.append(Lot(fill_id, closed_at, price, remaining if buying else -remaining, cash, fees))
        if self.trace is not None:
            open_cash = self.open_cash
            before = abs(self.trace[-1][3]) if self.trace else ZERO
            self.trace.append((closed_at, fill_id, self.quantity, open_cash, abs(open_cash) - before))


def _share(amount: Decimal, portion: Decimal, whole: Decimal) -> Decimal:
    """`amount` × portion / whole, and all of it for the last portion (shares then sum exactly)."""
    return amount if portion == whole else amount * portion / whole


BookKey = tuple[int, str, str]  # broker_id, symbol, source key


def book_key(fill: LedgerFill) -> BookKey:
    return fill.broker_id, fill.symbol, fill.source.key


_fill_order = attrgetter("traded_at", "fill_id")


def one_book(fills: Sequence[LedgerFill], *, traced: bool = False) -> Book:
    """These fills (at least one) matched FIFO as one book, in (traded_at, id) order; `traced`: with the
    book's state after each fill (Book.trace)."""
    ordered = sorted(fills, key=_fill_order)
    first = ordered[0]
    book = Book(first.broker_id, first.symbol, first.base, first.quote, first.source, trace=[] if traced else None)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        for fill in ordered:
            book._add(fill)
    return book


def match_books(fills: Iterable[LedgerFill]) -> dict[BookKey, Book]:
    """Every book of the ledger (broker × symbol × source), each matched by one_book."""
    groups: dict[BookKey, list[LedgerFill]] = {}
    for fill in fills:
        groups.setdefault(book_key(fill), []).append(fill)
    return {key: one_book(group) for key, group in groups.items()}


class RoundTrip(NamedTuple):
    broker_id: int
    symbol: str
    quote: str
    source: Source
    direction: str
    quantity: Decimal
    opened_at: datetime
    closed_at: datetime
    entry_price: Decimal  # quantity-weighted fill prices (fees are in `fees`, not in the prices)
    exit_price: Decimal
    fees: Decimal
    pnl: Decimal


def round_trips(book: Book) -> list[RoundTrip]:
    """One per closing order (or per closing fill without an order), in closing order (kept on the
    book until its next fill: do not change the list)."""
    if book.trips is None:
        book.trips = _round_trips(book)
    return book.trips


def _round_trips(book: Book) -> list[RoundTrip]:
    groups: dict[tuple, list[Closing]] = {}
    for closing in book.closings:
        key = ("order", closing.order_id) if closing.order_id is not None else ("fill", closing.fill_id)
        groups.setdefault(key, []).append(closing)
    head = (book.broker_id, book.symbol, book.quote, book.source)
    trips = []
    with localcontext() as ctx:
        ctx.prec = PRECISION
        for parts in groups.values():
            if len(parts) == 1:  # most trips: one closing, its own figures
                c = parts[0]
                trips.append(
                    RoundTrip(
                        *head,
                        c.direction,
                        c.quantity,
                        c.opened_at,
                        c.closed_at,
                        c.entry_price,
                        c.exit_price,
                        c.fees,
                        c.entry_cash + c.exit_cash,
                    )
                )
                continue
            quantity = entry = exit_ = fees = pnl = ZERO
            opened, closed = parts[0].opened_at, parts[0].closed_at
            for c in parts:  # one pass, each sum in closing order
                quantity += c.quantity
                entry += c.entry_price * c.quantity
                exit_ += c.exit_price * c.quantity
                fees += c.fees
                pnl += c.entry_cash + c.exit_cash
                opened, closed = min(opened, c.opened_at), max(closed, c.closed_at)
            trips.append(
                RoundTrip(
                    *head, parts[0].direction, quantity, opened, closed, entry / quantity, exit_ / quantity, fees, pnl
                )
            )
    return sorted(trips, key=lambda t: t.closed_at)


@dataclass(frozen=True)
class TripStats:
    count: int = 0
    wins: int = 0
    losses: int = 0
    gross_profit: Decimal = ZERO
    gross_loss: Decimal = ZERO  # positive

    @property
    def win_rate(self) -> Decimal | None:
        return Decimal(self.wins) / self.count if self.count else None

    @property
    def average_win(self) -> Decimal | None:
        return self.gross_profit / self.wins if self.wins else None

    @property
    def average_loss(self) -> Decimal | None:
        return -self.gross_loss / self.losses if self.losses else None

    @property
    def profit_factor(self) -> Decimal | None:
        """Gross profit / gross loss; None without a losing trip (shown as ∞ when there are wins)."""
        return self.gross_profit / self.gross_loss if self.gross_loss else None


def trip_stats(trips: Iterable[RoundTrip]) -> TripStats:
    count = wins = losses = 0
    profit = loss = ZERO
    for trip in trips:
        count += 1
        if trip.pnl > 0:
            wins, profit = wins + 1, profit + trip.pnl
        elif trip.pnl < 0:
            losses, loss = losses + 1, loss - trip.pnl
    return TripStats(count, wins, losses, profit, loss)


@dataclass(frozen=True)
class OpenPosition:
    broker_id: int
    symbol: str
    quote: str
    source: Source
    quantity: Decimal  # signed
    cost: Decimal  # what the open lots cost, fees included (negative for a short: what it received)
    entry_price: Decimal  # quantity-weighted lot price
    mark: Decimal | None

    @property
    def unrealised(self) -> Decimal | None:
        return None if self.mark is None else self.quantity * self.mark - self.cost


MarkKey = tuple[int, str]  # broker_id, symbol


def open_position(book: Book, marks: Mapping[MarkKey, Decimal | None]) -> OpenPosition | None:
    quantity = book.quantity
    if not book.lots:
        return None
    with localcontext() as ctx:
        ctx.prec = PRECISION
        weight = sum((abs(lot.quantity) for lot in book.lots), ZERO)
        entry = sum((lot.price * abs(lot.quantity) for lot in book.lots), ZERO) / weight
    return OpenPosition(
        book.broker_id,
        book.symbol,
        book.quote,
        book.source,
        quantity,
        -book.open_cash,
        entry,
        marks.get((book.broker_id, book.symbol)),
    )
