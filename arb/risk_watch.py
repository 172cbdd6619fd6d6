"""The arbitrage engine's risk watch: its own task, off the decision loop, reads both venues' positions,
margin and liquidation prices every `risk.poll_interval_s` (at most 2 s). Mixed into ArbEngine
(arb/engine.py), whose state it reads and sets; the decisions are the pure functions of arb/risk.py.

- A venue that does not answer `risk.failures_to_pause` reads in a row pauses the pair's entries.
- A leg found at another size than ours (liquidation, ADL, a trade made at the venue), and found so again by
  a second read 0.2 s later: the venues' sizes are taken, and if the legs no longer match the larger is
  brought to the smaller, with `leg_mismatch`.
- A leg near its liquidation price or an account near its maintenance margin: a warning notifies the
  admins; past the reduce threshold both legs are reduced together by one `size` per read, and entries
  pause until it clears.
- Funding settled on a leg is booked, and the held position's carry judged (arb/carry.py).
Nothing is acted on from a read that a trade overlapped: the next one decides.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any

from arb import risk
from arb.carry import FundingCarry
from arb.legs import LegPlan
from arb.pair import VENUES, ZERO, as_text
from core.exchanges import errors
from core.exchanges.perp.venue import PerpAccount, PerpPosition

AccountState = tuple[PerpAccount, list[PerpPosition]]
CONFIRM_AFTER_S = 0.2  # a changed size is read again this much later before it is acted on


class RiskWatch(FundingCarry):
    """ArbEngine's risk watch; the funding it reads is booked, and the carry judged, by FundingCarry (arb/carry.py)."""

    # The pairs of one process share each venue's read (arb/runner.py); their watches wake on the same beat.
    account_reads: Callable[[str], Awaitable[AccountState]] | None = None

    async def _risk_watch(self) -> None:
        interval = self.cfg.risk.poll_interval_s
        while True:
            await asyncio.sleep(interval - time.monotonic() % interval)
            await self.check_risk()

    async def check_risk(self) -> None:
        version, idle = self.position_version, not self.busy
        read = await self._read_both()
        self._set_pause()
        if read is None:
            return
        found = self._sizes(read)
        legs = [risk.LegRisk(v, found[v], self._mark(v), self._liquidation_price(v, read[v][1])) for v in VENUES]
        accounts = [read[v][0] for v in VENUES]
        alarms = risk.alarms(legs, accounts, self.cfg.risk)
        self.risk_view = risk.view(legs, accounts, alarms, time.time())
        if self.stopping or not idle or self.busy or version != self.position_version:
            return  # a trade overlapped the read: the next read decides
        if found != self.sizes:
            # A venue may show a fill a moment late: act only on sizes a second read confirms, no trade between.
            await asyncio.sleep(CONFIRM_AFTER_S)
            again = await self._read_both()
            overlapped = self.stopping or self.busy or version != self.position_version
            if again is not None and not overlapped and self._sizes(again) == found:
                await self._venue_changed(found)
            return
        await self._book_funding(read)
        if self.busy or version != self.position_version:
            return  # a trade began while the funding was saved
        self._announce(alarms)
        if any(a.level == risk.REDUCE for a in alarms) and not self.flat:
            orders = risk.reduction(self.sizes, self.cfg.size)
            plans = [LegPlan(v, self.cfg.markets[v], side, qty, True) for v, side, qty in orders]
            if plans:
                await self.exclusive(self.run_intent("reduce", self.direction or "—", plans, None))
                return
        await self.check_carry()

    async def _read_both(self) -> dict[str, AccountState] | None:
        states = await asyncio.gather(*(self._read_account(v) for v in VENUES))
        read = {venue: state for venue, state in zip(VENUES, states, strict=True) if state is not None}
        return read if len(read) == len(VENUES) else None

    def _sizes(self, read: dict[str, AccountState]) -> dict[str, Decimal]:
        return {v: sum((p.size for p in read[v][1] if p.market == self.cfg.markets[v]), ZERO) for v in VENUES}

    async def _read_account(self, venue: str) -> AccountState | None:
        try:
            read = self.account_reads(venue) if self.account_reads else self.venues[venue].account_state()
            state = await asyncio.wait_for(read, self.cfg.leg_timeout_s)
        except (TimeoutError, errors.ExchangeError) as exc:
            self._health_failures[venue] += 1
            if self._health_failures[venue] == self.cfg.risk.failures_to_pause:
                self.emit("venue_unhealthy", level=logging.ERROR, venue=venue, error=str(exc)[:200] or repr(exc))
            return None
        self._health_failures[venue] = 0
        return state

    def _set_pause(self) -> None:
        bad = [v for v in VENUES if self._health_failures[v] >= self.cfg.risk.failures_to_pause]
        reason = f"venue_unhealthy:{','.join(bad)}" if bad else self.risk_reason
        if reason != self.paused_reason:
            self.emit(
                "kill_switch" if reason else "kill_switch_cleared",
                level=logging.WARNING,
                reason=reason or self.paused_reason,
            )
            self.paused_reason = reason

    def _mark(self, venue: str) -> Decimal | None:
        book = self.books[venue]
        bid, ask = book.best_bid(), book.best_ask()
        return (bid.price + ask.price) / 2 if book.valid and bid and ask else None

    def _liquidation_price(self, venue: str, positions: list[PerpPosition]) -> Decimal | None:
        return next((p.liquidation_price for p in positions if p.market == self.cfg.markets[venue]), None)

    def _announce(self, alarms: list[risk.Alarm]) -> None:
        """An alarm is told when it appears or worsens; the pair pauses while one asks for a reduction."""
        now = {a.subject: a for a in alarms}
        for subject, alarm in now.items():
            if self._risk_levels.get(subject) in (None, risk.WARN) and self._risk_levels.get(subject) != alarm.level:
                self.emit(
                    "risk_reduce" if alarm.level == risk.REDUCE else "risk_warning",
                    level=logging.ERROR if alarm.level == risk.REDUCE else logging.WARNING,
                    venue=alarm.venue,
                    measure=alarm.measure,
                    value=round(alarm.value, 4),
                    threshold=alarm.threshold,
                    sizes=as_text(self.sizes),
                )
        self._risk_levels = {subject: alarm.level for subject, alarm in now.items()}
        reducing = [a.venue for a in alarms if a.level == risk.REDUCE]
        self.risk_reason = f"liquidation_risk:{','.join(sorted(set(reducing)))}" if reducing else None
        self._set_pause()

    async def _venue_changed(self, found: dict[str, Decimal]) -> None:
        """The venues' sizes are the truth: booked at the mark, then the legs matched again if they differ."""
        ours = dict(self.sizes)
        for venue in VENUES:
            moved = found[venue] - ours[venue]
            mark = self._mark(venue)
            if moved and mark is not None:
                self.cash -= moved * mark  # what the outside trade did, valued at the mark
            if found[venue] == 0:
                self.entry_prices.pop(venue, None)
                self._funding_seen.pop(venue, None)
        self.sizes = found
        self.position_version += 1
        if self.flat:
            self.realized_pnl += self.cash
            self.cash, self.entry_spread_bps = ZERO, None
        if self.net == 0:
            self.emit("position_reconciled", level=logging.WARNING, ours=as_text(ours), venues=as_text(found))
            await self.save_position()
            return
        changed = max(VENUES, key=lambda v: abs(found[v] - ours[v]))
        self.emit(
            "leg_mismatch",
            level=logging.ERROR,
            venue=changed,
            expected=str(ours[changed]),
            found=str(found[changed]),
            sizes=as_text(found),
            action="the other leg is brought to the same size, reduce-only",
        )
        await self.exclusive(self.ensure_hedged(trusted=True))

    async def exclusive(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run work as the one trade in flight (no decision meanwhile; a stop waits for it)."""
        self.busy = True

        async def guarded() -> None:
            try:
                await work
            finally:
                self.busy = False

        self.inflight = asyncio.get_running_loop().create_task(guarded())
        await asyncio.shield(self.inflight)
