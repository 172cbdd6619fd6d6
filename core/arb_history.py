"""The arbitrage engine's trade history from its stored intents and legs: every intent with both legs (filled size,
average price, fee), the spread it captured and its net cash flow after fees, filtered and paged for the
Arbitrage history page and its CSV; and the P&L realised since inception.

An intent's net is what its fills paid and received, fees included, plus the funding paid on the position it left
open (each payment is stored under the last intent with a fill before it, arb/carry.py): an entry's is the spread
it sold (positive) and the funding it carried, an exit's the spread it paid back; over a round trip that ends flat
they add up to the trade's realised P&L. Changes made at the venue (liquidation, ADL) are in the engine's P&L but
not in its intents. Per pair, the totals the Statistics page shows (`pair_summaries`)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, Select, and_, case, distinct, func, select
from sqlalchemy.orm import Session, selectinload

from core.models.arb import ArbFunding, ArbIntent, ArbLeg

KINDS = ("entry", "exit", "rollback", "reduce", "flatten")
STATES = ("pending", "sent", "done", "failed", "recovered")
VENUES = ("vest", "paradex")
PAGE_SIZE = 50
MAX_PAGE = 1_000_000
PAIR = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
ZERO = Decimal(0)
CSV_COLUMNS = [
    "intent_id",
    "created_at",
    "pair",
    "kind",
    "direction",
    "state",
    *(f"{venue}_{what}" for venue in VENUES for what in ("side", "filled", "avg_price", "fee")),
    "detected_spread_bps",
    "captured_spread_bps",
    "fees",
    "funding",
    "net_pnl",
]


class FilterError(ValueError):
    """A filter the history cannot apply; the message says which and why."""


@dataclass(frozen=True)
class HistoryFilter:
    pair: str | None = None
    kind: str | None = None
    state: str | None = None
    since: date | None = None  # UTC day, inclusive
    until: date | None = None  # UTC day, inclusive

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> HistoryFilter:
        """From a query string; a bad value is a FilterError naming the field."""
        values = {name: (args.get(name) or "").strip() for name in ("pair", "kind", "state", "from", "to")}
        if values["pair"] and not PAIR.match(values["pair"]):
            raise FilterError("pair: expected 1-64 letters, digits or _.:-")
        for name, allowed in (("kind", KINDS), ("state", STATES)):
            if values[name] and values[name] not in allowed:
                raise FilterError(f"{name}: expected one of {', '.join(allowed)}")
        since, until = _day(values["from"], "from"), _day(values["to"], "to")
        if since and until and since > until:
            raise FilterError("from: must not be after to")
        return cls(values["pair"] or None, values["kind"] or None, values["state"] or None, since, until)

    def query_args(self) -> dict[str, str]:
        """The filter as query arguments (for links to other pages and the CSV)."""
        args = {"pair": self.pair, "kind": self.kind, "state": self.state}
        args |= {"from": self.since.isoformat() if self.since else None}
        args |= {"to": self.until.isoformat() if self.until else None}
        return {k: v for k, v in args.items() if v}

    def apply(self, query: Select) -> Select:
        if self.pair:
            query = query.where(ArbIntent.pair == self.pair)
        if self.kind:
            query = query.where(ArbIntent.kind == self.kind)
        if self.state:
            query = query.where(ArbIntent.state == self.state)
        if self.since:
            query = query.where(ArbIntent.created_at >= datetime.combine(self.since, time(), UTC))
        if self.until:
            query = query.where(ArbIntent.created_at < datetime.combine(self.until + timedelta(days=1), time(), UTC))
        return query


def _day(raw: str, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FilterError(f"{name}: expected a date YYYY-MM-DD") from None


def parse_page(raw: str | None) -> int:
    if raw is None or raw == "":
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise FilterError(f"page: expected a whole number from 1 to {MAX_PAGE}")
    return int(raw)


@dataclass(frozen=True)
class LegSummary:
    """One venue's side of an intent, all its attempts together."""

    venue: str
    side: str
    filled: Decimal
    avg_price: Decimal | None
    fee: Decimal


@dataclass(frozen=True)
class TradeRow:
    id: int
    created_at: datetime
    pair: str
    kind: str
    direction: str
    state: str
    detected_spread_bps: Decimal | None
    legs: dict[str, LegSummary] = field(default_factory=dict)
    captured_spread_bps: Decimal | None = None
    fees: Decimal = ZERO
    funding: Decimal = ZERO  # paid on the position this intent left open (+ received)
    net: Decimal = ZERO  # the fills' cash flow after fees, plus the funding


def summarize(intent: ArbIntent) -> TradeRow:
    legs: dict[str, LegSummary] = {}
    for venue in dict.fromkeys(leg.venue for leg in intent.legs):
        attempts = [leg for leg in intent.legs if leg.venue == venue]
        filled = sum((leg.filled_size for leg in attempts), ZERO)
        cost = sum((leg.filled_size * leg.avg_price for leg in attempts if leg.avg_price is not None), ZERO)
        legs[venue] = LegSummary(
            venue, attempts[0].side, filled, cost / filled if filled else None, sum((a.fee for a in attempts), ZERO)
        )
    fees = sum((leg.fee for leg in legs.values()), ZERO)
    flow = sum(
        ((leg.avg_price or ZERO) * leg.filled * (1 if leg.side == "SELL" else -1) for leg in legs.values()), ZERO
    )
    sold = [leg.avg_price for leg in legs.values() if leg.side == "SELL" and leg.avg_price]
    bought = [leg.avg_price for leg in legs.values() if leg.side == "BUY" and leg.avg_price]
    captured = None
    if len(sold) == 1 and len(bought) == 1:
        captured = (sold[0] - bought[0]) / ((sold[0] + bought[0]) / 2) * 10_000
    funding = sum((payment.amount for payment in intent.funding_payments), ZERO)
    return TradeRow(
        intent.id,
        intent.created_at,
        intent.pair,
        intent.kind,
        intent.direction,
        intent.state,
        intent.spread_bps,
        legs,
        captured,
        fees,
        funding,
        flow - fees + funding,
    )


def _filtered(history: HistoryFilter) -> Select:
    loads = (selectinload(ArbIntent.legs), selectinload(ArbIntent.funding_payments))
    return history.apply(select(ArbIntent).options(*loads)).order_by(ArbIntent.id.desc())


def page_of(session: Session, history: HistoryFilter, page: int) -> tuple[list[TradeRow], int]:
    """One page of the filtered intents, newest first, and how many there are in all."""
    total = session.scalar(history.apply(select(func.count(ArbIntent.id)))) or 0
    intents = session.scalars(_filtered(history).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))
    return [summarize(intent) for intent in intents], total


def all_rows(session: Session, history: HistoryFilter) -> Iterator[TradeRow]:
    for intent in session.scalars(_filtered(history).execution_options(yield_per=500)):
        yield summarize(intent)


def csv_chunks(rows: Iterable[TradeRow]) -> Iterator[str]:
    """The CSV export, header first, a chunk per row (streamed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flushed() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flushed()
    for row in rows:
        cells: list[object] = [row.id, row.created_at.isoformat(), row.pair, row.kind, row.direction, row.state]
        for venue in VENUES:
            leg = row.legs.get(venue)
            cells += [leg.side, leg.filled, leg.avg_price or "", leg.fee] if leg else ["", "", "", ""]
        cells += [
            "" if row.detected_spread_bps is None else row.detected_spread_bps,
            "" if row.captured_spread_bps is None else round(row.captured_spread_bps, 4),
            row.fees,
            row.funding,
            row.net,
        ]
        writer.writerow([format(c.normalize(), "f") if isinstance(c, Decimal) else c for c in cells])
        yield flushed()


def realised_since_inception(session: Session, pair: str | None) -> Decimal:
    """The P&L realised by every intent up to the last one that left the pair flat (per pair, added up), funding
    included."""
    signed = case((ArbLeg.side == "SELL", 1), else_=-1) * ArbLeg.filled_size * func.coalesce(ArbLeg.avg_price, 0)
    funding = select(func.coalesce(func.sum(ArbFunding.amount), 0)).where(ArbFunding.intent_id == ArbIntent.id)
    query = (
        select(
            ArbIntent.id,
            ArbIntent.pair,
            ArbIntent.outcome,
            func.coalesce(func.sum(signed - ArbLeg.fee), 0) + funding.scalar_subquery(),
        )
        .outerjoin(ArbLeg, ArbLeg.intent_id == ArbIntent.id)
        .group_by(ArbIntent.id)
        .order_by(ArbIntent.id)
    )
    if pair:
        query = query.where(ArbIntent.pair == pair)
    running: dict[str, Decimal] = {}
    realised: dict[str, Decimal] = {}
    for _, intent_pair, outcome, flow in session.execute(query):
        running[intent_pair] = running.get(intent_pair, ZERO) + Decimal(flow)
        if _flat_after(outcome or {}):
            realised[intent_pair] = running[intent_pair]
    return sum(realised.values(), ZERO)


def _flat_after(outcome: dict) -> bool:
    sizes = outcome.get("sizes_after") or outcome.get("venues_now")
    if not isinstance(sizes, dict) or not sizes:
        return False
    try:
        return all(Decimal(str(size)) == 0 for size in sizes.values())
    except ArithmeticError:
        return False


@dataclass(frozen=True)
class PairSummary:
    """One pair's arbitrage since inception, for the Statistics page."""

    pair: str
    intents: int
    fees: Decimal
    funding: Decimal
    net: Decimal  # every intent's net added up (an open position's entry included)
    realised: Decimal  # up to the last intent that left the pair flat
    entry_spread_bps: Decimal | None  # the spread captured, averaged over the entries that filled both legs
    exit_spread_bps: Decimal | None  # likewise over the exits (what closing paid back)


def pair_summaries(session: Session) -> list[PairSummary]:
    """Every pair the engine ever traded, by name: one pass over the intents, their legs summed per side in SQL."""
    sell, filled = ArbLeg.side == "SELL", ArbLeg.filled_size > 0
    cost = ArbLeg.filled_size * func.coalesce(ArbLeg.avg_price, 0)

    def side(condition: ColumnElement[bool]) -> tuple:
        priced = and_(condition, filled, ArbLeg.avg_price.is_not(None))
        return (
            func.sum(case((priced, cost))),
            func.sum(case((priced, ArbLeg.filled_size))),
            func.count(distinct(case((priced, ArbLeg.venue)))),
        )

    funding = select(func.coalesce(func.sum(ArbFunding.amount), 0)).where(ArbFunding.intent_id == ArbIntent.id)
    query = (
        select(
            ArbIntent.pair,
            ArbIntent.kind,
            ArbIntent.outcome,
            func.coalesce(func.sum(ArbLeg.fee), 0),
            func.coalesce(func.sum(case((sell, cost), else_=-cost)), 0),
            funding.scalar_subquery(),
            *side(sell),
            *side(~sell),
        )
        .outerjoin(ArbLeg, ArbLeg.intent_id == ArbIntent.id)
        .group_by(ArbIntent.id)
        .order_by(ArbIntent.id)
    )
    totals: dict[str, _PairTotals] = {}
    for pair, kind, outcome, fees, flow, paid, sold_cost, sold, sellers, bought_cost, bought, buyers in session.execute(
        query
    ):
        pair_totals = totals.setdefault(pair, _PairTotals())
        net = Decimal(flow) - Decimal(fees) + Decimal(paid)
        pair_totals.add(kind, Decimal(fees), Decimal(paid), net, _flat_after(outcome or {}))
        if sellers == 1 and buyers == 1:
            sold_price, bought_price = Decimal(sold_cost) / Decimal(sold), Decimal(bought_cost) / Decimal(bought)
            pair_totals.captured(kind, (sold_price - bought_price) / ((sold_price + bought_price) / 2) * 10_000)
    return [totals[pair].summary(pair) for pair in sorted(totals)]


@dataclass
class _PairTotals:
    intents: int = 0
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    net: Decimal = ZERO
    realised: Decimal = ZERO
    spreads: dict[str, list[Decimal]] = field(default_factory=lambda: {"entry": [], "exit": []})

    def add(self, kind: str, fees: Decimal, funding: Decimal, net: Decimal, flat_after: bool) -> None:
        self.intents += 1
        self.fees, self.funding, self.net = self.fees + fees, self.funding + funding, self.net + net
        if flat_after:
            self.realised = self.net

    def captured(self, kind: str, bps: Decimal) -> None:
        if kind in self.spreads:
            self.spreads[kind].append(bps)

    def summary(self, pair: str) -> PairSummary:
        def average(kind: str) -> Decimal | None:
            found = self.spreads[kind]
            return sum(found, ZERO) / len(found) if found else None

        return PairSummary(
            pair, self.intents, self.fees, self.funding, self.net, self.realised, average("entry"), average("exit")
        )
