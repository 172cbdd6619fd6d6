"""aiohttp plumbing of a perp simulator face (Vest, Paradex): start/stop, tracked websockets, one-shot faults,
the liquidation engine (every 0.1 s) and the admin endpoints of sim/perp/admin.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from sim.perp.admin import admin_routes
from sim.perp.ledger import CorrelatedMarket, PerpLedger

log = logging.getLogger("sim.perp")
LIQUIDATION_CHECK_S = 0.1


@dataclass
class Faults:
    """One-shot fault injection for a face: each flag is consumed by the next matching event."""

    reject_next_order: bool = False
    delay_next_response_s: float = 0.0
    lose_next_response: bool = False  # the order is executed but the reply never comes
    drop_ws: bool = False
    gap_next_book: bool = False  # skip a sequence number (Paradex deltas)


class FaceServer:
    """aiohttp plumbing shared by the faces: start/stop, tracked websockets, one-shot faults."""

    venue = ""

    def __init__(self, market: CorrelatedMarket):
        from aiohttp import web

        self.ledger = PerpLedger(self.venue, market)
        self.faults = Faults()
        self.app = web.Application()
        self.sockets: set = set()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._liquidator: asyncio.Task | None = None
        self.port = 0
        self.app.add_routes(admin_routes(self))

    def account_by_public_id(self, public_id: str) -> str | None:
        """The ledger's account id for an account's public identity (admin endpoints)."""
        raise NotImplementedError

    def liquidate(self) -> None:
        for _account, market, size in self.ledger.liquidate_underwater():  # account ids may be API keys: not logged
            log.warning("position_liquidated", extra={"venue": self.venue, "market": market, "size": str(size)})

    async def _liquidations(self) -> None:
        while True:
            await asyncio.sleep(LIQUIDATION_CHECK_S)
            self.liquidate()

    async def start(self, port: int = 0) -> int:
        from aiohttp import web

        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._liquidator = asyncio.create_task(self._liquidations())
        return self.port

    async def stop(self) -> None:
        self._stopping.set()
        if self._liquidator is not None:
            self._liquidator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._liquidator
        for ws in list(self.sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def take_reject(self) -> bool:
        hit, self.faults.reject_next_order = self.faults.reject_next_order, False
        return hit

    async def reply_faults(self) -> None:
        """Apply delay/lose to the response of an order that has already been executed."""
        delay, self.faults.delay_next_response_s = self.faults.delay_next_response_s, 0.0
        if delay:
            await asyncio.sleep(delay)
        lose, self.faults.lose_next_response = self.faults.lose_next_response, False
        if lose:
            await self._stopping.wait()  # the client times out; the order stands

    def take_drop_ws(self) -> bool:
        hit, self.faults.drop_ws = self.faults.drop_ws, False
        return hit
