"""The exchange simulator process: one asyncio server, HTTP and WebSocket on the same port.

    serve(host, port, seed, state_dir)      blocking; what `python -m sim.spot` runs
    start_in_thread(port=0, ...) -> SimHandle   for tests: a real server on loopback in a thread

Admin endpoints (loopback only) provision API keys and balances and inject faults:

    POST   /sim/admin/accounts  {"api_key","api_secret","balances":{"USDT":"10000"}}   idempotent
    POST   /sim/admin/faults    {"latency_ms","http_5xx_rate","http_429_count","retry_after",
                                 "drop_ws_now":true,"lose_next_order_response":true,"refuse_ws":false}
    DELETE /sim/admin/faults
    POST   /sim/admin/prints    {"symbol","price","qty"}   a market trade seen by the engine only
    GET    /sim/health                                       (with "replay": its clock, when replaying a file)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import requests
from aiohttp import web

from core.exchanges.spot.binance import BinanceSpot
from sim.admin_http import Handler, admin_error, loopback_json
from sim.spot.binance_face import BinanceFace
from sim.spot.binance_streams import BinanceStreams
from sim.spot.binance_wire import fmt as _fmt
from sim.spot.market import SymbolSpec
from sim.spot.orders import EngineError
from sim.spot.replay import ReplayMarket
from sim.spot.state import Faults, SimState

log = logging.getLogger(__name__)

DEFAULT_PORT = 8900


# --- admin ----------------------------------------------------------------------------------


def admin_routes(state: SimState) -> list[web.RouteDef]:
    def loopback_only(handler: Handler) -> Callable:
        return loopback_json(handler, (ValueError, InvalidOperation, TypeError, EngineError))

    async def accounts(body: dict) -> web.Response:
        api_key, api_secret = body.get("api_key"), body.get("api_secret")
        if (
            not isinstance(api_key, str)
            or not api_key.replace("-", "").replace("_", "").isalnum()
            or len(api_key) > 128
        ):
            return admin_error("api_key must be 1-128 letters, digits, '-' or '_'")
        if not isinstance(api_secret, str) or not api_secret:
            return admin_error("api_secret must be a non-empty string")
        raw = body.get("balances") or {}
        if not isinstance(raw, dict):
            return admin_error("balances must be an object of asset -> amount")
        balances = {}
        for asset, amount in raw.items():
            value = Decimal(str(amount))
            if not value.is_finite() or value < 0:
                return admin_error(f"balance of {asset} must be a non-negative number")
            balances[str(asset).upper()] = value
        credential = state.provision(api_key, api_secret, balances)
        account = state.engine.account(credential.account_id)
        return web.json_response(
            {
                "api_key": api_key,
                "account_id": credential.account_id,
                "balances": {
                    a: {"free": _fmt(b.free), "locked": _fmt(b.locked)} for a, b in sorted(account.balances.items())
                },
            }
        )

    async def set_faults(body: dict) -> web.Response:
        faults = state.faults
        known = {
            "latency_ms",
            "http_5xx_rate",
            "http_429_count",
            "retry_after",
            "drop_ws_now",
            "lose_next_order_response",
            "refuse_ws",
        }
        unknown = set(body) - known
        if unknown:
            return admin_error(f"unknown fault(s): {', '.join(sorted(unknown))}")
        if "latency_ms" in body:
            faults.latency_ms = _bounded_int(body["latency_ms"], "latency_ms", 0, 120_000)
        if "http_5xx_rate" in body:
            rate = float(body["http_5xx_rate"])
            if not 0.0 <= rate <= 1.0:
                return admin_error("http_5xx_rate must be within [0, 1]")
            faults.http_5xx_rate = rate
        if "http_429_count" in body:
            faults.http_429_count = _bounded_int(body["http_429_count"], "http_429_count", 0, 1_000_000)
        if "retry_after" in body:
            faults.retry_after = _bounded_int(body["retry_after"], "retry_after", 0, 3600)
        if "lose_next_order_response" in body:
            faults.lose_next_order_response = bool(body["lose_next_order_response"])
        if "refuse_ws" in body:
            faults.ws_refused = bool(body["refuse_ws"])
        if body.get("drop_ws_now"):
            state.hub.drop_all()
        return web.json_response(faults.describe())

    async def clear_faults(body: dict) -> web.Response:
        state.faults = Faults()
        return web.json_response(state.faults.describe())

    async def prints(body: dict) -> web.Response:
        symbol = body.get("symbol")
        if symbol not in state.market.symbols:
            return admin_error("unknown symbol")
        price = Decimal(str(body.get("price")))
        qty = Decimal(str(body.get("qty", "1000000")))
        if not price.is_finite() or price <= 0 or not qty.is_finite() or qty <= 0:
            return admin_error("price and qty must be positive numbers")
        touched = state.engine.on_print(symbol, price, qty)
        state.mark_dirty()
        return web.json_response({"touched": [o.order_id for o in touched]})

    async def health(request: web.Request) -> web.Response:
        body: dict[str, Any] = {
            "ok": True,
            "symbols": list(state.market.symbols),
            "seed": state.market.seed,
            "connections": state.hub.connection_count(),
        }
        if state.replay is not None:
            body["replay"] = {"file": state.replay.source, **state.replay.clock.describe()}
        return web.json_response(body)

    return [
        web.post("/sim/admin/accounts", loopback_only(accounts)),
        web.post("/sim/admin/faults", loopback_only(set_faults)),
        web.delete("/sim/admin/faults", loopback_only(clear_faults)),
        web.post("/sim/admin/prints", loopback_only(prints)),
        web.get("/sim/health", health),
    ]


def _bounded_int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be a number within [{low}, {high}]")
    return int(value)


def build_app(state: SimState) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    streams = BinanceStreams(state)
    state.tick_listeners.append(streams.publish_tick)
    app.add_routes(BinanceFace(state).routes())
    app.add_routes(streams.routes())
    app.add_routes(admin_routes(state))
    return app


# --- running --------------------------------------------------------------------------------


async def _start(state: SimState, host: str, port: int) -> tuple[web.AppRunner, int, list[asyncio.Task]]:
    runner = web.AppRunner(build_app(state), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # the real port when asked for port 0
    tasks = [asyncio.create_task(state.run_clock()), asyncio.create_task(state.run_saver())]
    log.info("sim.started", extra={"host": host, "port": bound, "seed": state.market.seed})
    return runner, bound, tasks


async def _stop(state: SimState, runner: web.AppRunner, tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    state.hub.drop_all()
    await runner.cleanup()
    state.save()
    state.history_pool.shutdown(wait=False, cancel_futures=True)
    log.info("sim.stopped")


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    seed: int = 1,
    state_dir: str | Path | None = None,
    replay: ReplayMarket | None = None,
) -> None:
    """Runs the simulator until SIGINT/SIGTERM. Balances and orders persist under state_dir when given;
    a replay (sim/spot/replay.py) is the market instead of the synthetic one, and starts at once."""

    async def main() -> None:
        state = SimState(seed, state_dir=state_dir, replay=replay, fork_saves=True)
        if replay is not None:
            replay.clock.start()
        runner, _, tasks = await _start(state, host, port)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
        await _stop(state, runner, tasks)

    asyncio.run(main())


@dataclass
class SimHandle:
    """A running simulator (in a thread) and small admin helpers that go over its HTTP API."""

    url: str
    ws_url: str
    port: int
    state: SimState = field(repr=False)
    _stop: Callable[[], None] = field(repr=False)

    def create_account(self, api_key: str, api_secret: str, balances: dict[str, str | Decimal]) -> dict:
        body = {"api_key": api_key, "api_secret": api_secret, "balances": {k: str(v) for k, v in balances.items()}}
        return self._admin("POST", "/sim/admin/accounts", body)

    def set_faults(self, **faults: Any) -> dict:
        return self._admin("POST", "/sim/admin/faults", faults)

    def clear_faults(self) -> dict:
        return self._admin("DELETE", "/sim/admin/faults", None)

    def inject_print(self, symbol: str, price: str | Decimal, qty: str | Decimal = "1000000") -> dict:
        return self._admin("POST", "/sim/admin/prints", {"symbol": symbol, "price": str(price), "qty": str(qty)})

    def by_hand(self, api_key: str, api_secret: str) -> BinanceSpot:
        """The account's own client on the Binance face, as a trader in the exchange's app: what it places
        or cancels never passes through Aristobot (what reconciliation must find)."""
        return BinanceSpot(api_key=api_key, api_secret=api_secret, base_url=self.url)

    def _admin(self, method: str, path: str, body: dict | None) -> dict:
        response = requests.request(
            method, self.url + path, data=json.dumps(body) if body is not None else None, timeout=10
        )
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self._stop()


def start_in_thread(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    seed: int = 1,
    state_dir: str | Path | None = None,
    ws_ping_interval: float = 20.0,
    replay: ReplayMarket | None = None,
    symbols: tuple[SymbolSpec, ...] | None = None,
) -> SimHandle:
    """Starts a simulator on its own event loop in a daemon thread; returns once it accepts connections.
    A replay's clock stays held until the caller starts it (`handle.state.replay.clock.start()`)."""
    ready: concurrent.futures.Future = concurrent.futures.Future()
    loop = asyncio.new_event_loop()
    state_box: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            state = SimState(seed, symbols, state_dir=state_dir, ws_ping_interval=ws_ping_interval, replay=replay)
            runner, bound, tasks = loop.run_until_complete(_start(state, host, port))
        except Exception as exc:  # reported to the caller, not lost in the thread
            ready.set_exception(exc)
            return
        state_box.update(state=state, runner=runner, tasks=tasks)
        ready.set_result(bound)
        loop.run_forever()
        loop.run_until_complete(_stop(state, runner, tasks))
        loop.close()

    thread = threading.Thread(target=run, name=f"sim-{port}", daemon=True)
    thread.start()
    bound = ready.result(timeout=30)

    def stop() -> None:
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    return SimHandle(f"http://{host}:{bound}", f"ws://{host}:{bound}", bound, state_box["state"], stop)
