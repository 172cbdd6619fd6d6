"""One leg of a trade: send an IOC/market order, retry with backoff, resolve an unknown result.

A rejected order (the venue said no) is retried with a fresh client id. An order whose result is
unknown (timeout, dropped connection, garbled reply) is never simply re-sent: the venue's position
tells whether it filled, and only an order proven not to have filled is retried.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from core.exchanges import errors
from core.exchanges.keepalive_http import SENT_AT
from core.exchanges.perp.book import OrderBook, Side
from core.exchanges.perp.venue import PerpOrderRequest, PerpOrderResult, PerpVenue

log = logging.getLogger(__name__)

REJECTED = (errors.InvalidOrder, errors.InsufficientFunds, errors.AuthError, errors.RateLimited, errors.OrderNotFound)
FINAL_STATUSES = {"FILLED", "PARTIALLY_FILLED", "CANCELLED", "REJECTED", "CLOSED", "EXPIRED"}


def signed(side: Side, size: Decimal) -> Decimal:
    return size if side == "BUY" else -size


@dataclass(frozen=True)
class LegPlan:
    venue: str
    market: str
    side: Side
    size: Decimal
    reduce_only: bool = False


@dataclass
class LegResult:
    plan: LegPlan
    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)  # sum of filled size x price
    fee: Decimal = Decimal(0)
    state: str = "none"  # filled | partial | rejected | unknown | none
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    sent_at: float | None = None  # perf_counter when the first attempt was on the wire

    @property
    def avg_price(self) -> Decimal | None:
        return self.cost / self.filled if self.filled else None

    @property
    def signed_fill(self) -> Decimal:
        return signed(self.plan.side, self.filled)

    @property
    def complete(self) -> bool:
        return self.filled >= self.plan.size


def limit_price(book: OrderBook, side: Side, size: Decimal, slippage_bps: Decimal, tick: Decimal) -> Decimal | None:
    """Worst acceptable price: the level that fills `size`, plus slippage, rounded away from the book."""
    worst = book.worst_price(side, size) if book.valid else None
    if worst is None:
        return None
    factor = 1 + slippage_bps / 10_000 if side == "BUY" else 1 - slippage_bps / 10_000
    rounding = ROUND_CEILING if side == "BUY" else ROUND_FLOOR
    return ((worst * factor) / tick).quantize(Decimal(1), rounding=rounding) * tick


def client_id_for(venue: PerpVenue, intent_id: int) -> str:
    next_nonce = getattr(venue, "next_nonce", None)
    if next_nonce is not None:  # Vest: the nonce is the only idempotency key it knows
        return str(next_nonce())
    return f"arb{intent_id}-{secrets.token_hex(4)}"


Recorder = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class Prepared:
    req: PerpOrderRequest
    body: dict  # the signed request body


@dataclass
class LegRunner:
    venues: dict[str, PerpVenue]
    books: dict[str, OrderBook]
    fees_bps: dict[str, Decimal]
    ticks: dict[str, Decimal]
    max_retries: int
    backoff_s: float
    timeout_s: float
    slippage_bps: Decimal
    record_attempt: Recorder  # (intent_id, leg fields) before a retry is sent
    record_result: Recorder  # (client_id, fields) after each attempt
    emit: Callable[..., None]

    def prepare(self, plan: LegPlan, client_id: str) -> Prepared | None:
        """Price and sign the first attempt before the intent is committed, so that the signing
        overlaps the database round trip."""
        price = limit_price(self.books[plan.venue], plan.side, plan.size, self.slippage_bps, self.ticks[plan.venue])
        if price is None:
            return None
        req = PerpOrderRequest(plan.market, plan.side, plan.size, price, client_id, reduce_only=plan.reduce_only)
        return Prepared(req, self.venues[plan.venue].prepare(req))

    async def run(
        self,
        plan: LegPlan,
        intent_id: int,
        first_client_id: str,
        position_before: Decimal,
        prepared: Prepared | None = None,
    ) -> LegResult:
        result = LegResult(plan)
        client_id = first_client_id
        for attempt in range(1, self.max_retries + 2):
            remaining = plan.size - result.filled
            if remaining <= 0:
                break
            if attempt > 1:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 2))
                client_id = client_id_for(self.venues[plan.venue], intent_id)
                await self.record_attempt(
                    intent_id,
                    {
                        "venue": plan.venue,
                        "market": plan.market,
                        "side": plan.side,
                        "size": remaining,
                        "reduce_only": plan.reduce_only,
                        "attempt": attempt,
                        "client_id": client_id,
                    },
                )
            result.attempts = attempt
            outcome, filled, price, detail = await self._attempt(
                plan,
                remaining,
                client_id,
                position_before + result.signed_fill,
                result,
                prepared if attempt == 1 else None,
            )
            if filled:
                result.filled += filled
                result.cost += filled * (price or 0)
                result.fee += filled * (price or 0) * self.fees_bps[plan.venue] / 10_000
            await self.record_result(
                client_id,
                state=outcome,
                filled_size=filled,
                avg_price=price,
                fee=filled * (price or 0) * self.fees_bps[plan.venue] / 10_000,
                venue_order_id=detail.get("order_id"),
                error=detail.get("error"),
            )
            if detail.get("error"):
                result.errors.append(detail["error"])
            if outcome == "unknown":
                result.state = "unknown"  # cannot tell: never re-send blind
                return result
            if result.complete:
                result.state = "filled"
                return result
            if attempt <= self.max_retries:
                self.emit(
                    "leg_retry",
                    venue=plan.venue,
                    side=plan.side,
                    size=str(plan.size - result.filled),
                    attempt=attempt + 1,
                    intent_id=intent_id,
                    reason=detail.get("error") or outcome,
                )
        result.state = "partial" if result.filled else "rejected"
        return result

    async def _attempt(
        self,
        plan: LegPlan,
        size: Decimal,
        client_id: str,
        position_before: Decimal,
        result: LegResult,
        prepared: Prepared | None = None,
    ) -> tuple[str, Decimal, Decimal | None, dict]:
        venue = self.venues[plan.venue]
        if prepared is None:
            prepared = self.prepare(LegPlan(plan.venue, plan.market, plan.side, size, plan.reduce_only), client_id)
        if prepared is None:
            return "rejected", Decimal(0), None, {"error": "no usable book to price the order"}
        box: list[float] = []
        token = SENT_AT.set(box)
        try:
            # asyncio.timeout, not wait_for: the request is written in this task's current step, so
            # the two legs leave back to back instead of one loop iteration (or more) apart.
            async with asyncio.timeout(self.timeout_s):
                reply = await venue.send_prepared(prepared.req, prepared.body)
            if result.sent_at is None:
                result.sent_at = box[-1] if box else time.perf_counter()
            async with asyncio.timeout(self.timeout_s):
                reply = await self._final(venue, reply)
        except REJECTED as exc:
            return "rejected", Decimal(0), None, {"error": f"{type(exc).__name__}: {exc}"[:300]}
        except (TimeoutError, errors.ExchangeError, ValueError) as exc:
            if result.sent_at is None and box:
                result.sent_at = box[-1]
            reason = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
            self.emit(
                "leg_unknown",
                level=logging.WARNING,
                venue=plan.venue,
                side=plan.side,
                size=str(size),
                client_id=client_id,
                reason=reason,
            )
            return await self._resolve(plan, size, position_before, reason)
        finally:
            SENT_AT.reset(token)
        filled = min(reply.filled_size, size)
        state = "filled" if filled >= size else ("partial" if filled else "none")
        return state, filled, reply.avg_price, {"order_id": reply.order_id}

    async def _final(self, venue: PerpVenue, reply: PerpOrderResult) -> PerpOrderResult:
        """The order's final state: IOC orders settle at once, but Vest's place reply only carries an id."""
        get_order = getattr(venue, "get_order", None)
        if reply.status in FINAL_STATUSES or get_order is None:
            return reply
        return await get_order(reply.order_id)

    async def _resolve(
        self, plan: LegPlan, size: Decimal, position_before: Decimal, reason: str
    ) -> tuple[str, Decimal, Decimal | None, dict]:
        """Ask the venue what its position is now: the difference is what this order did."""
        for delay in (0.0, 0.2, 0.5, 1.0):
            await asyncio.sleep(delay)
            try:
                now = await asyncio.wait_for(position_of(self.venues[plan.venue], plan.market), self.timeout_s)
            except (TimeoutError, errors.ExchangeError):
                continue
            moved = (now - position_before) * (1 if plan.side == "BUY" else -1)
            filled = min(max(moved, Decimal(0)), size)
            book = self.books[plan.venue]
            estimate = book.vwap(plan.side, size) if book.valid else None
            self.emit(
                "leg_resolved",
                venue=plan.venue,
                side=plan.side,
                filled=str(filled),
                position_before=str(position_before),
                position_now=str(now),
            )
            state = "filled" if filled >= size else ("partial" if filled else "none")
            return state, filled, estimate, {"error": reason}
        return "unknown", Decimal(0), None, {"error": reason + "; position query failed too"}


async def position_of(venue: PerpVenue, market: str) -> Decimal:
    return sum((p.size for p in await venue.positions() if p.market == market), Decimal(0))
