"""Stopping the arbitrage engine: no new entries, in-flight legs finished, loops ended, the hedge checked
against the venues once more, open orders cancelled, position persisted, connections closed. Mixed into
ArbEngine (arb/engine.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from core.exchanges import errors


class Shutdown:
    """ArbEngine's orderly stop."""

    async def stop(self, close_venues: bool = True) -> bool:
        """Stop entries, finish in-flight legs, re-check the hedge, cancel open orders, persist, close. True when
        nothing is pending and the legs match. Venues shared with other pairs are left open (arb/runner.py)."""
        self.stopping = True
        self.emit("stopping", reason="signal")
        if self.inflight is not None and not self.inflight.done():
            self.emit("waiting_for_inflight_legs")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self.inflight), 30)
        # A cancel can be lost when it lands as an inner wait_for completes (Python 3.11): repeat it.
        while running := [task for task in self._tasks if not task.done()]:
            for task in running:
                task.cancel()
            await asyncio.wait(running, timeout=1.0)
        for task in self._tasks:
            if not task.cancelled() and task.exception() is not None:
                self.emit("loop_failed", level=logging.ERROR, task=task.get_name(), error=repr(task.exception())[:200])
        # A leg liquidated or changed at the venue while stopping is not left alone: the venues are read once more.
        hedged = await self.ensure_hedged()
        pending = await self.cancel_open_orders()
        if self.store is not None and self.restored:  # a stop before the restore must not save zeros over it
            await self.save_position()
            for _ in range(10):
                if await self.db(self.store.flush):
                    break
                await asyncio.sleep(0.5)
        await asyncio.gather(*(self._stop_feed(feed) for feed in self.feeds.values()), *self._closing)
        if self.publish is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.publish, self.snapshot() | {"state": "stopped"})
        for venue in self.venues.values() if close_venues else ():
            with contextlib.suppress(Exception):
                await venue.close()
        self._db.shutdown(wait=True)
        if self.store is not None:
            await self.store.close()
        unsaved = len(self.store.backlog) if self.store is not None else 0
        return hedged and pending == 0 and unsaved == 0

    async def cancel_open_orders(self) -> int:
        """Cancel whatever rests on either venue; returns how many could not be confirmed gone."""
        left = 0
        for name, venue in self.venues.items():
            try:
                orders = await asyncio.wait_for(venue.open_orders(), self.cfg.leg_timeout_s)
                for order in orders:
                    with contextlib.suppress(errors.OrderNotFound):
                        await asyncio.wait_for(venue.cancel_order(order.order_id), self.cfg.leg_timeout_s)
                    self.emit("order_cancelled", venue=name, order_id=order.order_id)
                left += len(await asyncio.wait_for(venue.open_orders(), self.cfg.leg_timeout_s))
            except (TimeoutError, errors.ExchangeError) as exc:
                self.emit("open_orders_unknown", level=logging.ERROR, venue=name, error=str(exc)[:200])
                left += 1
        return left
