"""Starting the arbitrage engine: the process's CPU scheduling, the book feeds connected, the persisted
position restored and unfinished intents resolved against the venues' positions (the truth), the funding
period and an admin's dry run switch restored, then trading enabled and the loops started. Mixed into
ArbEngine (arb/engine.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from arb.config import ArbConfig
from arb.pair import VENUES, ZERO, as_text, today
from arb.store import StoreUnavailable
from core.exchanges import errors
from core.exchanges.perp.book import BookFeed

log = logging.getLogger("arb.engine")  # the engine's logger, as before the split


def set_priority(cfg: ArbConfig) -> str:
    """Apply the configured CPU scheduling to this process; call it before threads start (Linux
    applies both per thread, and new threads inherit). Returns what is in force."""
    applied = "inherited"
    try:
        if cfg.realtime_priority:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(cfg.realtime_priority))
                applied = f"SCHED_FIFO {cfg.realtime_priority}"
            except OSError as exc:
                log.warning("realtime_refused", extra={"priority": cfg.realtime_priority, "error": str(exc)})
        if applied == "inherited":
            os.setpriority(os.PRIO_PROCESS, 0, cfg.nice)
            applied = f"nice {cfg.nice}"
    except OSError as exc:
        log.warning("priority_not_raised", extra={"nice": cfg.nice, "error": str(exc)})
    log.info("scheduling_applied", extra={"scheduling": applied})
    return applied


class Startup:
    """ArbEngine's start-up and recovery."""

    async def recover(self) -> None:
        """Restore the persisted position, resolve unfinished intents, reconcile with the venues."""
        saved = await self._db_retrying(self.store.load_position, self.cfg.pair) if self.store else None
        if saved:
            self.sizes = {v: saved["sizes"].get(v, ZERO) for v in VENUES}
            self.entry_prices = saved["entry_prices"]
            self.entry_spread_bps, self.cash = saved["entry_spread_bps"], saved["cash"]
            if saved["pnl_day"] == today():
                self.realized_pnl, self.halted_reason = saved["realized_pnl"], saved["halted_reason"]
                self.loss_offset = saved["loss_offset"]
            self.paused_by = saved["paused_by"]
            self.emit(
                "position_restored",
                sizes=as_text(self.sizes),
                realized_pnl=self.realized_pnl,
                halted_reason=self.halted_reason,
            )
        self.restored = True
        pending = await self._db_retrying(self.store.open_intents, self.cfg.pair) if self.store else []
        truth = None
        while truth is None:
            truth = await self.venue_sizes()
            if truth is None:
                await asyncio.sleep(1)
        for intent in pending:
            moved = {v: truth[v] - intent["before"].get(v, ZERO) for v in VENUES}
            self.emit(
                "intent_recovering",
                level=logging.WARNING,
                intent_id=intent["id"],
                kind=intent["kind"],
                state=intent["state"],
                before=as_text(intent["before"]),
                venues_now=as_text(truth),
                legs=[
                    {"venue": leg["venue"], "side": leg["side"], "size": str(leg["size"]), "state": leg["state"]}
                    for leg in intent["legs"]
                ],
            )
            await self.db(
                self.store.finish_intent,
                intent["id"],
                "recovered",
                {"recovered_at": time.time(), "venues_now": as_text(truth), "moved_since_intent": as_text(moved)},
            )
        if truth != self.sizes:
            self.emit("position_reconciled", level=logging.WARNING, ours=as_text(self.sizes), venues=as_text(truth))
            self.sizes = truth
            self.position_version += 1
            if self.flat:
                self.cash, self.entry_prices, self.entry_spread_bps = ZERO, {}, None
        await self.ensure_hedged(trusted=True)
        await self.save_position()
        await self.restore_funding_period()
        await self._restore_dry_run()

    async def _restore_dry_run(self) -> None:
        """An admin's dry run switch outlives a restart: the last one the engine did wins over config.yaml."""
        choice = await self._db_retrying(self.store.last_dry_run_choice, self.cfg.pair) if self.store else None
        if choice is not None and choice != self.dry_run:
            self.dry_run = choice
            self.emit("dry_run_restored", dry_run=choice)

    async def _db_retrying(self, fn: Callable, *args: Any) -> Any:
        delay = 0.2
        while True:
            try:
                return await self.db(fn, *args)
            except StoreUnavailable as exc:
                self.emit("database_unreachable", level=logging.WARNING, retry_in_s=delay, error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 3.0)

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        for venue in VENUES:
            self.feeds[venue] = await self._connect(venue)
        for venue, feed in self.feeds.items():
            try:
                await feed.wait_ready(10)
            except TimeoutError:
                self.emit("book_not_ready", level=logging.WARNING, venue=venue)
        await self.recover()
        if self.store is not None:
            with contextlib.suppress(StoreUnavailable):  # no record, no trade: run_intent will say so
                await self.store.connect()
        for venue in self.venues.values():
            with contextlib.suppress(errors.ExchangeError, TimeoutError):  # the health loop retries
                await asyncio.wait_for(venue.keep_ready(), self.cfg.leg_timeout_s)
        await self._check_admin_halt()  # halted before start-up: no entry even before the first health check
        gc.collect()
        gc.freeze()  # start-up objects leave the collector's scans: shorter pauses on the hot path
        self.trading_enabled = True
        self.emit(
            "engine_started",
            dry_run=self.dry_run,
            paused_by=self.paused_by,
            markets=self.cfg.markets,
            entry_threshold_bps=self.cfg.entry_threshold_bps,
            exit_threshold_bps=self.cfg.exit_threshold_bps,
            size=self.cfg.size,
            sizes=as_text(self.sizes),
        )
        self._tasks = [
            asyncio.create_task(self._watchdog(), name="arb-watchdog"),
            asyncio.create_task(self._health(), name="arb-health"),
            asyncio.create_task(self._status(), name="arb-status"),
            asyncio.create_task(self._risk_watch(), name="arb-risk"),
            asyncio.create_task(self._controls(), name="arb-controls"),
        ]

    async def _connect(self, venue: str) -> BookFeed:
        feed = await self.venues[venue].connect_book(self.cfg.markets[venue], self.on_book)
        self.books[venue] = feed.book  # the legs price from the same objects
        self.legs.books[venue] = feed.book
        return feed
