"""Statistics and P&L from our own fill ledger (never from the venue's balance or trade history).

Method
------
**Books.** Fills are matched inside one *book*: one broker connection, one symbol, one source (manual,
each webhook, each bot, OCO, or "no order" for a fill the ledger holds without an order). Each book
is an independent position, so a bot's P&L never absorbs a manual trade on the same symbol. A source
that sells more than it bought opens a *short* lot (on a spot venue this is a sell of inventory another
source bought); the two books then net out in the broker and symbol totals.

**Fees** are valued in the symbol's quote asset: a fee charged in the quote asset counts as is, a fee
charged in the base asset counts as ``fee × fill price`` (a fee without an asset is taken as quote, as
spot venues charge sells). A base-asset fee also changes the inventory: a buy of ``q`` with fee ``f``
in base delivers ``q − f``; a sell of ``q`` with fee ``f`` in base removes ``q + f``. A fee in any
other asset (BNB, …) has no price in the ledger: it is left out of P&L and reported, per asset, as
unvalued.

**Cash flow of a fill** (in quote): a buy pays ``q × p`` plus its quote fee, a sell receives ``q × p``
minus its quote fee. Base fees need no cash term: their cost is the inventory they remove, which the
position's cost basis carries (``fee × price`` of value).

**FIFO lot matching.** Fills are taken in ``(traded_at, id)`` order. A fill in the direction of the
book's position (or on a flat book) opens a lot carrying its inventory change and its whole cash flow
(fees included: the cost basis). A fill against the position closes the oldest lots first; each
closed portion realises ``lot cash share + fill cash share`` where shares are pro rata to quantity,
the last share of a lot or fill taking exactly what remains (no rounding drift). Any remainder of the
fill opens a lot the other way. Consequently, once a book is flat again its realised P&L is exactly
``Σ sell notional − Σ buy notional − Σ quote-asset fees`` (base fees being in the quantities), and
every fee valued in quote appears in the realised P&L of the round trip that closes its lot.

**Round trips.** One closing order (its fills together; a fill without an order alone) against the
lots it closes: its P&L is the sum of its closed portions. Win rate, average win/loss and profit
factor (gross profit / gross loss) are computed over round trips; a zero P&L is neither win nor loss.

**Ranges.** The matching always runs over the whole history up to the range's end, so a position
opened before the range is closed against its real entry. Realised P&L, round trips and the chart
count closings inside the range; fees count fills inside the range; open positions are those at the
range's end, marked at the venue's *current* last price (unrealised = ``quantity × mark + lot cash``).

Arithmetic is Decimal at 60 significant digits; the ledger holds 18 decimal places.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.exchanges.errors import ExchangeError
from core.models import Bot, BrokerConnection, Fill, Order, SymbolRule, Webhook, WebhookAlert

log = logging.getLogger(__name__)

ZERO = Decimal(0)
PRECISION = 60
LEDGER_PLACES = Decimal("1e-18")
KNOWN_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "TRY", "BRL", "BTC", "ETH",
                "BNB")


# ---- the ledger as statistics see it -----------------------------------------------------------

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


@dataclass(frozen=True)
class LedgerFill:
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

    @property
    def base_fee(self) -> Decimal:
        return self.fee if self.fee_asset == self.base else ZERO

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
        if self.side == "buy":
            return self.quantity - self.base_fee
        return -(self.quantity + self.base_fee)

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


# ---- FIFO matching -------------------------------------------------------------------------------

@dataclass
class Lot:
    """An open piece of a position: signed quantity (> 0 long, < 0 short) and the cash that opened it."""

    fill_id: int
    opened_at: datetime
    price: Decimal
    quantity: Decimal
    cash: Decimal
    fees: Decimal  # fees valued in quote still attached to this lot (shown per round trip)


@dataclass(frozen=True)
class Closing:
    """One lot portion closed by one fill."""

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
        change, cash = fill.inventory_change, fill.cash_flow
        fees = fill.fee_in_quote or ZERO
        sign = 1 if change > 0 else -1
        remaining = abs(change)
        while remaining > 0 and self.lots and (self.lots[0].quantity > 0) != (sign > 0):
            lot = self.lots[0]
            portion = min(remaining, abs(lot.quantity))
            lot_cash, lot_fees = _share(lot.cash, portion, abs(lot.quantity)), _share(lot.fees, portion,
                                                                                       abs(lot.quantity))
            fill_cash, fill_fees = _share(cash, portion, remaining), _share(fees, portion, remaining)
            self.closings.append(Closing(
                fill.fill_id, fill.order_id, portion, "long" if lot.quantity > 0 else "short", lot.opened_at,
                fill.traded_at, lot.price, fill.price, lot_cash, fill_cash, lot_fees + fill_fees))
            lot.quantity += portion if lot.quantity < 0 else -portion
            lot.cash -= lot_cash
            lot.fees -= lot_fees
            cash -= fill_cash
            fees -= fill_fees
            remaining -= portion
            if lot.quantity == 0:
                self.lots.popleft()
        if remaining > 0:
            self.lots.append(Lot(fill.fill_id, fill.traded_at, fill.price, sign * remaining, cash, fees))


def _share(amount: Decimal, portion: Decimal, whole: Decimal) -> Decimal:
    """`amount` × portion / whole, and all of it for the last portion (shares then sum exactly)."""
    return amount if portion == whole else amount * portion / whole


def book_key(fill: LedgerFill) -> tuple[int, str, str]:
    return fill.broker_id, fill.symbol, fill.source.key


def match_books(fills: Iterable[LedgerFill]) -> dict[tuple[int, str, str], Book]:
    """Every book of the ledger, each fill matched FIFO in (traded_at, id) order."""
    books: dict[tuple[int, str, str], Book] = {}
    for fill in sorted(fills, key=lambda f: (f.traded_at, f.fill_id)):
        key = book_key(fill)
        book = books.get(key)
        if book is None:
            book = books[key] = Book(fill.broker_id, fill.symbol, fill.base, fill.quote, fill.source)
        book.add(fill)
    return books


# ---- round trips and summaries -------------------------------------------------------------------

@dataclass(frozen=True)
class RoundTrip:
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
    """One per closing order (or per closing fill without an order), in closing order."""
    groups: dict[tuple, list[Closing]] = {}
    for closing in book.closings:
        key = ("order", closing.order_id) if closing.order_id is not None else ("fill", closing.fill_id)
        groups.setdefault(key, []).append(closing)
    trips = []
    with localcontext() as ctx:
        ctx.prec = PRECISION
        for parts in groups.values():
            quantity = sum((c.quantity for c in parts), ZERO)
            trips.append(RoundTrip(
                book.broker_id, book.symbol, book.quote, book.source, parts[0].direction, quantity,
                min(c.opened_at for c in parts), max(c.closed_at for c in parts),
                sum((c.entry_price * c.quantity for c in parts), ZERO) / quantity,
                sum((c.exit_price * c.quantity for c in parts), ZERO) / quantity,
                sum((c.fees for c in parts), ZERO), sum((c.pnl for c in parts), ZERO)))
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


@dataclass
class Summary:
    """One row of a table: realised, unrealised, fees and round-trip statistics in one quote asset."""

    key: tuple
    title: str
    quote: str
    realised: Decimal = ZERO
    fees: Decimal = ZERO
    unvalued_fees: dict[str, Decimal] = field(default_factory=dict)
    unrealised: Decimal | None = ZERO  # None: an open position has no price
    open_positions: int = 0
    trips: TripStats = field(default_factory=TripStats)

    @property
    def total(self) -> Decimal | None:
        return None if self.unrealised is None else self.realised + self.unrealised


@dataclass(frozen=True)
class Range:
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive

    def __contains__(self, moment: datetime) -> bool:
        return (self.start is None or moment >= self.start) and (self.end is None or moment < self.end)


@dataclass
class Report:
    by_broker: list[Summary]
    by_symbol: list[Summary]
    by_source: list[Summary]
    totals: list[Summary]  # one per quote asset
    positions: list[OpenPosition]
    trips: list[RoundTrip]
    chart: dict[str, list[tuple[int, Decimal]]]  # quote -> [(unix second, cumulative realised)]
    problems: list[str]


MarkKey = tuple[int, str]  # broker_id, symbol


def open_position(book: Book, marks: Mapping[MarkKey, Decimal | None]) -> OpenPosition | None:
    quantity = book.quantity
    if not book.lots:
        return None
    with localcontext() as ctx:
        ctx.prec = PRECISION
        weight = sum((abs(lot.quantity) for lot in book.lots), ZERO)
        entry = sum((lot.price * abs(lot.quantity) for lot in book.lots), ZERO) / weight
    return OpenPosition(book.broker_id, book.symbol, book.quote, book.source, quantity, -book.open_cash, entry,
                        marks.get((book.broker_id, book.symbol)))


def build_report(fills: Iterable[LedgerFill], window: Range = Range(),
                 marks: Mapping[MarkKey, Decimal | None] | None = None,
                 broker_titles: Mapping[int, str] | None = None) -> Report:
    """Everything the statistics page shows, from ledger fills (those after `window.end` are ignored)."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return _build_report(fills, window, marks or {}, broker_titles or {})


def _build_report(fills: Iterable[LedgerFill], window: Range, marks: Mapping[MarkKey, Decimal | None],
                  titles: Mapping[int, str]) -> Report:
    usable, problems = [], []
    for fill in fills:
        if window.end is not None and fill.traded_at >= window.end:
            continue
        problem = ledger_problem(fill)
        if problem:
            problems.append(problem)
        else:
            usable.append(fill)
    books = match_books(usable)
    tables: dict[str, dict[tuple, Summary]] = {"broker": {}, "symbol": {}, "source": {}, "total": {}}

    def rows(book: Book) -> list[Summary]:
        keys = {"broker": ((book.broker_id, book.quote), titles.get(book.broker_id, f"#{book.broker_id}")),
                "symbol": ((book.broker_id, book.symbol), f"{book.symbol} · {titles.get(book.broker_id, '')}"),
                "source": ((book.source.key, book.quote), book.source.title),
                "total": ((book.quote,), "Total")}
        return [tables[name].setdefault(key, Summary(key, title, book.quote)) for name, (key, title) in keys.items()]

    positions, trips = [], []
    for book in books.values():
        targets = rows(book)
        realised = sum((c.pnl for c in book.closings if c.closed_at in window), ZERO)
        book_trips = [trip for trip in round_trips(book) if trip.closed_at in window]
        position = open_position(book, marks)
        for row in targets:
            row.realised += realised
            row.trips = _merge(row.trips, trip_stats(book_trips))
            if position is not None:
                row.open_positions += 1
                unrealised = position.unrealised
                row.unrealised = None if unrealised is None or row.unrealised is None else row.unrealised + unrealised
        trips.extend(book_trips)
        if position is not None:
            positions.append(position)
    for fill in usable:
        if fill.traded_at not in window:
            continue
        value = fill.fee_in_quote
        for row in rows(books[book_key(fill)]):
            if value is None:
                row.unvalued_fees[fill.fee_asset] = row.unvalued_fees.get(fill.fee_asset, ZERO) + fill.fee
            else:
                row.fees += value
    trips.sort(key=lambda t: t.closed_at)
    return Report(by_broker=_sorted(tables["broker"]), by_symbol=_sorted(tables["symbol"]),
                  by_source=_sorted(tables["source"]), totals=_sorted(tables["total"]),
                  positions=sorted(positions, key=lambda p: (p.broker_id, p.symbol, p.source.key)), trips=trips,
                  chart=cumulative_realised(c for book in books.values() for c in _in_window(book, window)),
                  problems=problems)


def _in_window(book: Book, window: Range) -> Iterable[tuple[str, Closing]]:
    return ((book.quote, c) for c in book.closings if c.closed_at in window)


def _merge(a: TripStats, b: TripStats) -> TripStats:
    return TripStats(a.count + b.count, a.wins + b.wins, a.losses + b.losses, a.gross_profit + b.gross_profit,
                     a.gross_loss + b.gross_loss)


def _sorted(table: dict[tuple, Summary]) -> list[Summary]:
    return sorted(table.values(), key=lambda row: (row.title, row.quote))


def cumulative_realised(closings: Iterable[tuple[str, Closing]]) -> dict[str, list[tuple[int, Decimal]]]:
    """Cumulative realised P&L per quote asset, one point per second with a closing (the chart's time
    axis wants strictly increasing times), starting from 0 a second before the first closing."""
    per_second: dict[str, dict[int, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for quote, closing in closings:
        per_second[quote][int(closing.closed_at.timestamp())] += closing.pnl
    series = {}
    for quote, points in per_second.items():
        seconds = sorted(points)
        running, line = ZERO, [(seconds[0] - 1, ZERO)]
        for second in seconds:
            running += points[second]
            line.append((second, running))
        series[quote] = line
    return series


# ---- CSV -----------------------------------------------------------------------------------------

TRIP_COLUMNS = ("closed_at", "opened_at", "broker", "symbol", "source", "direction", "quantity", "entry_price",
                "exit_price", "fees", "pnl", "quote")


def trips_csv(trips: Iterable[RoundTrip], broker_titles: Mapping[int, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TRIP_COLUMNS)
    for trip in trips:
        writer.writerow([trip.closed_at.isoformat(), trip.opened_at.isoformat(),
                         broker_titles.get(trip.broker_id, trip.broker_id), trip.symbol, trip.source.title,
                         trip.direction, plain(trip.quantity), plain(trip.entry_price), plain(trip.exit_price),
                         plain(trip.fees), plain(trip.pnl), trip.quote])
    return out.getvalue()


def plain(value: Decimal | None, places: Decimal = LEDGER_PLACES) -> str:
    """A Decimal at ledger precision without exponent or trailing zeros ('' for None)."""
    if value is None:
        return ""
    text = format(value.quantize(places), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# ---- loading the ledger and the marks --------------------------------------------------------------

def load_ledger(session: Session, user_id: int, *, broker_id: int | None = None,
                until: datetime | None = None) -> list[LedgerFill]:
    """The user's fills (and only theirs), with base/quote and the source of the order behind each."""
    query = (select(Fill.id, Fill.broker_id, Fill.symbol, Fill.side, Fill.quantity, Fill.price, Fill.traded_at,
                    Fill.fee, Fill.fee_asset, Fill.order_id, Order.source, Order.source_ref, SymbolRule.base,
                    SymbolRule.quote)
             .outerjoin(Order, Fill.order_id == Order.id)
             .outerjoin(SymbolRule, (SymbolRule.broker_id == Fill.broker_id) & (SymbolRule.symbol == Fill.symbol))
             .where(Fill.user_id == user_id))
    if broker_id is not None:
        query = query.where(Fill.broker_id == broker_id)
    if until is not None:
        query = query.where(Fill.traded_at < until)
    rows = session.execute(query.order_by(Fill.traded_at, Fill.id)).all()
    sources = _source_resolver(session, user_id, rows)
    fills = []
    for row in rows:
        base, quote = (row.base, row.quote) if row.base else split_symbol(row.symbol)
        fills.append(LedgerFill(row.id, row.broker_id, row.symbol, base, quote, row.side, row.quantity, row.price,
                                row.traded_at, row.fee or ZERO, row.fee_asset, row.order_id,
                                sources(row.order_id, row.source, row.source_ref)))
    return fills


def _source_resolver(session: Session, user_id: int, rows):
    """Bot orders carry the bot id, webhook orders the alert id: name them after their bot and webhook."""
    refs = defaultdict(set)
    for row in rows:
        if row.source in ("bot", "webhook") and row.source_ref:
            refs[row.source].add(row.source_ref)
    bots = {str(bot_id): name for bot_id, name in session.execute(
        select(Bot.id, Bot.name).where(Bot.user_id == user_id,
                                       func.cast(Bot.id, Order.source_ref.type).in_(refs["bot"])))}
    alerts = {str(alert_id): (webhook_id, name) for alert_id, webhook_id, name in session.execute(
        select(WebhookAlert.id, Webhook.id, Webhook.name).join(Webhook, WebhookAlert.webhook_id == Webhook.id)
        .where(Webhook.user_id == user_id,
               func.cast(WebhookAlert.id, Order.source_ref.type).in_(refs["webhook"])))}

    def resolve(order_id: int | None, kind: str | None, ref: str | None) -> Source:
        if order_id is None:
            return Source("none")
        if kind == "bot":
            return Source("bot", ref, f"Bot · {bots[ref]}" if ref in bots else f"Bot #{ref} (deleted)")
        if kind == "webhook":
            if ref in alerts:
                webhook_id, name = alerts[ref]
                return Source("webhook", str(webhook_id), f"Webhook · {name}")
            return Source("webhook", "deleted", "Webhook (deleted)")
        return Source(kind or "manual")

    return resolve


def broker_titles(session: Session, user_id: int) -> dict[int, str]:
    return {broker.id: broker.label for broker in session.scalars(
        select(BrokerConnection).where(BrokerConnection.user_id == user_id).order_by(BrokerConnection.label))}


def fetch_marks(session: Session, user_id: int, keys: Iterable[MarkKey], *, timeout: float = 5.0,
                ) -> dict[MarkKey, Decimal | None]:
    """The venue's last price of each (broker, symbol); None where the venue does not answer."""
    from core.brokers import exchange_for, last_price  # core.brokers pulls the adapters in: only when marking

    keys = sorted(set(keys))
    brokers = {b.id: b for b in session.scalars(select(BrokerConnection).where(
        BrokerConnection.user_id == user_id, BrokerConnection.id.in_({k[0] for k in keys})))}
    exchanges = {}
    for broker_id, broker in brokers.items():
        try:
            exchanges[broker_id] = exchange_for(broker, max_attempts=1, timeout=timeout)
        except ValueError as err:  # a connection no adapter serves (unknown venue, missing passphrase): no price
            log.warning("statistics_mark_unavailable", extra={"broker_id": broker_id, "error": str(err)})

    def mark(key: MarkKey) -> Decimal | None:
        exchange = exchanges.get(key[0])
        if exchange is None:
            return None
        try:
            return last_price(exchange, key[1])
        except ExchangeError as err:  # the page shows "no price"; it must not fail for a venue's answer
            log.warning("statistics_mark_failed", extra={"broker_id": key[0], "symbol": key[1],
                                                         "error": str(err)[:200]})
            return None

    try:
        with ThreadPoolExecutor(max_workers=min(8, len(keys) or 1)) as pool:
            return dict(zip(keys, pool.map(mark, keys), strict=True))
    finally:
        for exchange in exchanges.values():
            exchange.close()
