"""Funding per intent and the carry exit rule of the arbitrage engine. Mixed into ArbEngine through RiskWatch
(arb/risk_watch.py), whose reads give the funding each venue settled on a leg.

- Each funding payment goes into the pair's cash (its P&L), the leg's total, and a stored row (`arb_funding`)
  under the intent whose position it was paid on: the last intent with a fill that left the position open.
  That intent's net in the history counts it, and so does the P&L since inception.
- The position's period runs from its first fill out of flat to flat again; the funding booked in it is kept
  (and restored at start-up) for the carry rule.
- The carry exit rule (`arb.carry_exit`, off by default): once the position has been held `min_hold_minutes`,
  its funding per hour since it opened is projected over `horizon_hours`; a projected cost above the fees to
  exit now (both legs' taker fees at the mid) plus `threshold_usd` exits both legs together through the
  engine's ordinary exit, with a `carry_exit` event. In dry run the event is told once and nothing is sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from arb.config import CarryExitConfig
from arb.legs import LegResult
from arb.pair import VENUES, ZERO
from arb.spread import Decision
from core.exchanges.perp.venue import PerpAccount, PerpPosition

SECONDS_PER_HOUR = Decimal(3600)
BPS = Decimal(10_000)


@dataclass(frozen=True)
class Carry:
    """The held position's carry: funding per hour since it opened, projected over the horizon, vs exiting."""

    per_hour: Decimal
    projected: Decimal  # over the horizon; negative: the position pays
    exit_fees: Decimal
    exit: bool


def judge(funding: Decimal, held_s: float, exit_fees: Decimal, cfg: CarryExitConfig) -> Carry | None:
    """The carry of a position held `held_s` that booked `funding` (+ received), or None before it can be judged."""
    if held_s <= 0 or held_s < cfg.min_hold_minutes * 60:
        return None
    per_hour = funding / (Decimal(str(held_s)) / SECONDS_PER_HOUR)
    projected = per_hour * Decimal(str(cfg.horizon_hours))
    return Carry(per_hour, projected, exit_fees, cfg.enabled and -projected > exit_fees + cfg.threshold_usd)


class FundingCarry:
    """ArbEngine's funding attribution and carry exit."""

    funding_intent_id: int | None = None  # the intent the next funding payment is attributed to
    period_opened_at: float | None = None  # epoch seconds the open position's first fill came
    period_funding = ZERO  # funding booked since then
    carry_view: dict | None = None  # the last carry figures, for the status
    _carry_told = False  # the dry run's carry exit was told for this period
    _carry_retry_at = 0.0  # monotonic time before which a failed carry exit is not tried again

    def note_intent(self, intent_id: int, results: Sequence[LegResult]) -> None:
        """After an intent's fills were applied: the period ends when flat; otherwise the intent takes the funding."""
        if self.flat:
            self._end_period()
        elif intent_id and any(r.filled for r in results):
            if self.period_opened_at is None:
                self.period_opened_at, self.period_funding = time.time(), ZERO
            self.funding_intent_id = intent_id

    def _end_period(self) -> None:
        self.funding_intent_id, self.period_opened_at, self.period_funding = None, None, ZERO
        self.carry_view, self._carry_told = None, False

    async def restore_funding_period(self) -> None:
        """At start-up, once the position is known: the open position's intent, opening time and funding so far."""
        if self.flat or self.store is None:
            self._end_period()
            return
        period = await self._db_retrying(self.store.funding_period, self.cfg.pair)
        opened, per_venue = period["opened_at"], period["per_venue"]
        self.funding_intent_id = period["intent_id"]
        self.period_opened_at = opened.timestamp() if opened is not None else time.time()
        self.period_funding = sum(per_venue.values(), ZERO)
        # A venue's figure counts from the leg's opening, as ours did: funding settled while the engine was away
        # is booked at the first read.
        self._funding_seen = {v: per_venue.get(v, ZERO) for v in VENUES if self.sizes[v]}

    async def _book_funding(self, read: dict[str, tuple[PerpAccount, list[PerpPosition]]]) -> None:
        """Funding a venue settled on a leg since the last read: into the pair's cash (its P&L), the leg's total and
        the intent's record."""
        booked = False
        for venue in VENUES:
            position = next((p for p in read[venue][1] if p.market == self.cfg.markets[venue]), None)
            if position is None or position.funding is None:
                self._funding_seen.pop(venue, None)
                continue
            before, self._funding_seen[venue] = self._funding_seen.get(venue), position.funding
            if before is not None and position.funding != before:
                amount = position.funding - before
                self.cash += amount
                self.funding[venue] += amount
                self.period_funding += amount
                booked = True
                self.emit(
                    "funding_booked",
                    venue=venue,
                    amount=amount,
                    leg_total=self.funding[venue],
                    intent_id=self.funding_intent_id,
                )
                if self.store is not None:
                    await self.db(self.store.record_funding, self.cfg.pair, self.funding_intent_id, venue, amount)
        if booked:
            await self.save_position()

    def _exit_fees(self) -> Decimal | None:
        total = ZERO
        for venue in VENUES:
            mark = self._mark(venue)
            if mark is None:
                return None
            total += abs(self.sizes[venue]) * mark * self.cfg.fees_bps[venue] / BPS
        return total

    async def check_carry(self) -> None:
        """Judge the held position's carry; exit both legs when the rule says so (called by the risk watch)."""
        direction = self.direction
        if self.flat:
            self._end_period()
            return
        fees = self._exit_fees()
        if direction is None or self.unhedged or self.period_opened_at is None or fees is None:
            return
        cfg = self.cfg.carry_exit
        carry = judge(self.period_funding, time.time() - self.period_opened_at, fees, cfg)
        self.carry_view = None if carry is None else self._carry_status(carry)
        spreads = self.last_spreads
        if carry is None or not carry.exit or spreads is None or time.monotonic() < self._carry_retry_at:
            return
        context = {
            "direction": direction,
            "per_hour": round(carry.per_hour, 6),
            "projected": round(carry.projected, 6),
            "horizon_hours": cfg.horizon_hours,
            "exit_fees": round(carry.exit_fees, 6),
            "threshold_usd": cfg.threshold_usd,
            "intent_id": self.funding_intent_id,
        }
        if self.dry_run:
            if not self._carry_told:
                self._carry_told = True
                self.emit("carry_exit", level=logging.WARNING, dry_run=True, **context)
            return
        self.emit("carry_exit", level=logging.WARNING, **context)
        self._carry_retry_at = time.monotonic() + self.cfg.failed_entry_cooldown_s
        decision = Decision("exit", direction, spreads.exit_bps[direction])
        await self.exclusive(self._execute(decision, time.perf_counter()))

    def _carry_status(self, carry: Carry) -> dict:
        """The carry for the page, to 4 places like the engine's other amounts."""
        return {
            "funding": str(round(self.period_funding, 4)),
            "per_hour": str(round(carry.per_hour, 4)),
            "projected": str(round(carry.projected, 4)),
            "horizon_hours": self.cfg.carry_exit.horizon_hours,
            "exit_fees": str(round(carry.exit_fees, 4)),
            "rule": "on" if self.cfg.carry_exit.enabled else "off",
        }
