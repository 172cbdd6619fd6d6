"""Both perp simulator faces on one event loop in a daemon thread (tests, benches), and their accounts."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from decimal import Decimal

from eth_account import Account

from core.exchanges.perp.credentials import Credentials
from core.exchanges.perp.stark import StarkKey
from sim.perp.ledger import BASE_PRICES, CorrelatedMarket
from sim.perp.paradex_face import ParadexFace
from sim.perp.vest_face import VestFace


def provision_accounts(
    vest_face: VestFace, paradex_face: ParadexFace, creds: Credentials, cash: Decimal = Decimal(100_000)
) -> None:
    """Register an account on both faces (call on the simulators' loop thread)."""
    vest_face.add_account(creds.vest_api_key, Account.from_key(creds.vest_signing_key).address, cash)
    paradex_face.add_account(int(creds.paradex_account, 16), StarkKey(creds.paradex_private_key).public, cash)


def perp_market(seed: int | None, spread_every_s: tuple[float, float]) -> CorrelatedMarket:
    """The market both faces quote: each base (BTC, ETH, ... BASE_PRICES) around its own random walk."""
    return CorrelatedMarket(("vest", "paradex"), dict(BASE_PRICES), seed=seed, spread_every_s=spread_every_s)


@dataclass
class PerpSimHandle:
    vest_rest: str
    vest_ws: str
    paradex_rest: str
    paradex_ws: str
    vest: object
    paradex: object
    loop: asyncio.AbstractEventLoop
    _thread: threading.Thread
    _stop: asyncio.Event

    def call(self, fn, *args):
        """Run fn(*args) on the simulator's loop thread (faces are not thread-safe)."""
        done = threading.Event()
        box: list = []

        def run():
            box.append(fn(*args))
            done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait(5)
        return box[0] if box else None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def start_perp_sims_in_thread(
    *,
    vest_port: int = 0,
    paradex_port: int = 0,
    seed: int | None = None,
    spread_every_s: tuple[float, float] = (4.0, 10.0),
) -> PerpSimHandle:
    """Both faces on one loop in a daemon thread, sharing one correlated market."""
    market = perp_market(seed, spread_every_s)
    ready = threading.Event()
    state: dict = {}

    async def main() -> None:
        vest, paradex = VestFace(market), ParadexFace(market)
        state["vest_port"] = await vest.start(vest_port)
        state["paradex_port"] = await paradex.start(paradex_port)
        state.update(vest=vest, paradex=paradex, loop=asyncio.get_running_loop(), stop=asyncio.Event())
        ready.set()
        await state["stop"].wait()
        await vest.stop()
        await paradex.stop()

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="perp-sims", daemon=True)
    thread.start()
    if not ready.wait(15):
        raise RuntimeError("perp simulators did not start")
    v, p = state["vest_port"], state["paradex_port"]
    return PerpSimHandle(
        f"http://127.0.0.1:{v}/v2",
        f"ws://127.0.0.1:{v}/ws-api",
        f"http://127.0.0.1:{p}/v1",
        f"ws://127.0.0.1:{p}/v1/ws",
        state["vest"],
        state["paradex"],
        state["loop"],
        thread,
        state["stop"],
    )
