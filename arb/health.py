"""The arbitrage engine's background watch: feeds that went silent are reconnected, order paths kept warm,
the daily loss limit (kill switch) halts and closes, the administrator's trading halt is followed (venues
that stop answering pause entries: arb/risk_watch.py). Mixed into ArbEngine (arb/engine.py), whose state
it reads and sets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from arb.pair import VENUES, ZERO, today
from arb.spread import Decision
from core.exchanges import errors
from core.exchanges.perp.book import BookFeed
from core.halt import halted_now


class HealthLoops:
    """The watch loops and the kill switches of ArbEngine."""

    def check_loss_limit(self) -> None:
        if self.pnl_day != today():
            self.pnl_day, self.realized_pnl, self.loss_offset = today(), ZERO, ZERO
            if self.halted_reason == "daily_loss_limit":
                self.halted_reason = None
                self.emit("kill_switch_cleared", reason="new trading day")
        loss = self.loss_offset - (self.realized_pnl + self.unrealized_pnl())  # since the last reset, if any
        if loss >= self.cfg.daily_loss_limit_usd and self.halted_reason is None:
            self.halted_reason = "daily_loss_limit"
            self.emit(
                "kill_switch",
                level=logging.ERROR,
                reason="daily_loss_limit",
                loss=round(loss, 4),
                limit=self.cfg.daily_loss_limit_usd,
            )

    async def _watchdog(self) -> None:
        """A feed that went silent (no frame, no error) is torn down and reconnected."""
        while True:
            await asyncio.sleep(min(0.5, self.cfg.watchdog_s / 2))
            for venue, feed in list(self.feeds.items()):
                age = feed.book.age()
                if feed.book.updated_at and age > self.cfg.watchdog_s:
                    self.emit("book_watchdog_restart", level=logging.WARNING, venue=venue, silent_s=round(age, 1))
                    feed.book.invalidate()
                    # A silent peer may not answer the close handshake either: do not wait for it.
                    closing = asyncio.create_task(self._stop_feed(feed))
                    self._closing.add(closing)
                    closing.add_done_callback(self._closing.discard)
                    self.feeds[venue] = await self._connect(venue)

    async def _stop_feed(self, feed: BookFeed) -> None:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(feed.stop(), 2.0)

    async def _health(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.health_interval_s)
            if self.store is not None and self.store.backlog:
                await self.db(self.store.flush)
            if self.unhedged and not self.busy:
                self.busy = True
                try:
                    await self.ensure_hedged()
                finally:
                    self.busy = False
            self.check_loss_limit()
            if self.halted_reason == "daily_loss_limit" and not self.flat and not self.busy and self.direction:
                await self._close_all("daily_loss_limit")
            await self._warm_venues()
            await self._check_admin_halt()

    async def _check_admin_halt(self) -> None:
        halted = await asyncio.to_thread(halted_now, self.admin_halted)
        if halted != self.admin_halted:
            self.emit("trading_halted" if halted else "trading_resumed", level=logging.WARNING)
            self.admin_halted = halted

    async def _close_all(self, reason: str) -> None:
        self.busy = True
        try:
            self.emit("closing_position", level=logging.WARNING, reason=reason)
            await self._execute(Decision("exit", self.direction, ZERO), time.perf_counter())
        finally:
            self.busy = False

    async def _warm_venues(self) -> None:
        """Keep the order paths warm; whether a venue answers is the risk watch's to say (risk_watch.py)."""
        for venue in VENUES:
            if not self.busy:  # a trade in flight holds connections; warm up after it
                with contextlib.suppress(TimeoutError, errors.ExchangeError):
                    await asyncio.wait_for(self.venues[venue].keep_ready(), self.cfg.leg_timeout_s)
