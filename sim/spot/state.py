"""The state of the spot simulator that its faces share: market, books, engine, credentials, streams, faults."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from sim.spot.engine import MatchingEngine
from sim.spot.hub import Hub
from sim.spot.market import INTERVAL_MINUTES, Book, SymbolSpec, SyntheticMarket
from sim.spot.orders import Instrument
from sim.spot.persistence import load_state, save_state
from sim.spot.replay import ReplayMarket

log = logging.getLogger(__name__)

CATCH_UP_SECONDS = 300


@dataclass
class Credential:
    api_key: str
    account_id: str
    secret: str = field(repr=False)
    uid: int = 0

    def __repr__(self) -> str:
        return f"Credential(api_key={self.api_key[:4]}…, account_id={self.account_id})"


@dataclass
class Faults:
    latency_ms: int = 0
    http_5xx_rate: float = 0.0
    http_429_count: int = 0
    retry_after: int = 1
    lose_next_order_response: bool = False
    ws_refused: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(7), repr=False)

    def describe(self) -> dict:
        return {
            "latency_ms": self.latency_ms,
            "http_5xx_rate": self.http_5xx_rate,
            "http_429_count": self.http_429_count,
            "retry_after": self.retry_after,
            "lose_next_order_response": self.lose_next_order_response,
            "refuse_ws": self.ws_refused,
        }

    async def before_request(self, request: web.Request) -> web.Response | None:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        if self.http_429_count > 0:
            self.http_429_count -= 1
            return web.json_response(
                {
                    "code": -1003,
                    "msg": "Too many requests; current limit of IP request weight is 6000 per "
                    "1 MINUTE. Please use WebSocket Streams for live updates.",
                },
                status=429,
                headers={"Retry-After": str(self.retry_after)},
            )
        if self.http_5xx_rate and self.rng.random() < self.http_5xx_rate:
            return web.json_response(
                {
                    "code": -1008,
                    "msg": "Server is currently overloaded with other requests. Please try again in a few minutes.",
                },
                status=503,
            )
        return None

    async def after_order(self, request: web.Request) -> None:
        """The order is placed; when asked, the answer is lost: the connection closes without a reply."""
        if self.lose_next_order_response:
            self.lose_next_order_response = False
            log.info("sim.fault.response_lost", extra={"path": request.path})
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()


class SimState:
    """Everything the faces share: market, books, engine, credentials, streams, faults."""

    def __init__(
        self,
        seed: int = 1,
        symbols: tuple[SymbolSpec, ...] | None = None,
        state_dir: str | Path | None = None,
        ws_ping_interval: float = 20.0,
        replay: ReplayMarket | None = None,
        fork_saves: bool = False,
    ):
        kwargs = {"symbols": symbols} if symbols else {}
        self.market: SyntheticMarket | ReplayMarket
        self.history_market: SyntheticMarket | ReplayMarket
        if replay is not None:
            # A replay is read-only arrays: one object serves the clock and the history thread.
            self.market = self.history_market = replay
        else:
            self.market = SyntheticMarket(seed, **kwargs)
            # A twin market (same seed, so the same numbers) serves history off the event loop.
            self.history_market = SyntheticMarket(seed, **kwargs)
        self.replay = replay
        self._ticking: int | None = None  # the market second being printed, while it is
        self.history_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sim-history")
        self.books = {s: Book(spec, seed) for s, spec in self.market.symbols.items()}
        self.last: dict[str, Decimal] = {}
        self.engine = MatchingEngine(
            [
                Instrument(s.symbol, s.base, s.quote, s.tick_size, s.step_size, s.min_qty, s.max_qty, s.min_notional)
                for s in self.market.symbols.values()
            ],
            book=lambda symbol: self.books[symbol].sides(100),
            clock=self._venue_ms,
            last_price=self.last_price,
        )
        self.credentials: dict[str, Credential] = {}
        self.hub = Hub(set(self.market.symbols), set(INTERVAL_MINUTES))
        self.faults = Faults()
        # Faces publish each second of market in their own protocol: f(symbol, second, event_ms, trade, ...)
        self.tick_listeners: list[Callable[..., None]] = []
        self.ws_ping_interval = ws_ping_interval
        self.state_file = Path(state_dir) / "state.json" if state_dir else None
        self.dirty = False
        self.fork_saves = fork_saves  # its own process: saves are written by a forked child (save_forked)
        self.saving_pid: int | None = None
        self.processed_second = int(self.market_time()) - 1
        for symbol in self.market.symbols:
            self._move_market(symbol, self.processed_second)
        if self.state_file is not None and self.state_file.exists():
            credentials = load_state(self.state_file, self.engine)
            for api_key, secret, account_id, uid in credentials:
                self.credentials[api_key] = Credential(api_key, account_id, secret, uid)

    def _venue_ms(self) -> int:
        """The venue's (wall) clock for orders and trades. A replay's market may print a second late of
        its clock under load: a trade of that second is dated when the clock reached it, so the market
        time of its timestamp (`ReplayClock.market_at`) is the second it printed."""
        if self.replay is not None and self._ticking is not None:
            return int(min(time.time(), self.replay.clock.wall_at(self._ticking + 0.5)) * 1000)
        return int(time.time() * 1000)

    def market_time(self) -> float:
        """Seconds of market time: the wall clock, or the replay's clock when replaying a file."""
        return self.replay.clock.now() if self.replay is not None else time.time()

    def _wall_seconds(self, market_seconds: float) -> float:
        return self.replay.clock.wall_seconds(market_seconds) if self.replay is not None else market_seconds

    def last_price(self, symbol: str) -> Decimal:
        return self.last[symbol]

    def credential_uid(self, account_id: str | None) -> int:
        return next((c.uid for c in self.credentials.values() if c.account_id == account_id), 0)

    def mark_dirty(self) -> None:
        self.dirty = True

    async def run_market(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Runs a history computation of the twin market in its own thread."""
        method = getattr(self.history_market, function.__name__)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.history_pool, lambda: method(*args, **kwargs))

    # --- accounts ---------------------------------------------------------------------------

    def provision(self, api_key: str, api_secret: str, balances: dict[str, Decimal]) -> Credential:
        credential = self.credentials.get(api_key)
        if credential is None:
            uid = len(self.credentials) + 1
            credential = Credential(api_key, f"acct-{uid}", api_secret, uid)
            self.credentials[api_key] = credential
        credential.secret = api_secret
        self.engine.set_account(credential.account_id, balances)
        self.mark_dirty()
        return credential

    def save(self) -> None:
        if self.saving_pid is not None:  # a forked save still writing must not replace this newer one after it
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.saving_pid, 0)
        if self.state_file is None or not self.dirty:
            return
        self.dirty = False
        save_state(self.state_file, self.engine, self._credential_rows())

    async def save_forked(self) -> None:
        """Written by a forked child from its copy-on-write image of this process, as Redis's BGSAVE does: the
        state file holds every order ever placed (28 MB after a few benches, ~1 s to write), and writing it on
        the event loop held every answer for that second, a stall in the middle of each webhook bench."""
        if self.state_file is None or not self.dirty:
            return
        self.dirty = False
        rows = self._credential_rows()
        pid = self.saving_pid = os.fork()
        if pid == 0:  # the child: no logging, no event loop, no atexit handlers (they belong to the parent)
            code = 0
            try:
                save_state(self.state_file, self.engine, rows)
            except BaseException:  # noqa: BLE001 - reported to the parent by the exit code
                code = 1
            os._exit(code)
        _, status = await asyncio.to_thread(os.waitpid, pid, 0)
        self.saving_pid = None
        if os.waitstatus_to_exitcode(status) != 0:
            self.dirty = True  # tried again at the next pass
            log.error("sim.save_failed", extra={"path": str(self.state_file), "exit": status})

    def _credential_rows(self) -> list[tuple[str, str, str, int]]:
        return [(c.api_key, c.secret, c.account_id, c.uid) for c in self.credentials.values()]

    # --- the market clock -------------------------------------------------------------------

    def _move_market(self, symbol: str, second: int) -> tuple:
        trade = self.market.trade(symbol, second)
        self.last[symbol] = trade.price
        ticks = self.market.price_ticks(symbol, second)
        return trade, self.books[symbol].rebuild(ticks, second)

    def tick(self, second: int) -> None:
        """One second of market: a trade per symbol, the book moved, resting orders matched, streams fed."""
        event_ms = int(time.time() * 1000)
        self._ticking = second
        try:
            self._tick_symbols(second, event_ms)
        finally:
            self._ticking = None

    def _tick_symbols(self, second: int, event_ms: int) -> None:
        for symbol in self.market.symbols:
            trade, (first_id, last_id, bid_changes, ask_changes) = self._move_market(symbol, second)
            if self.engine.on_print(symbol, trade.price, trade.qty):
                self.mark_dirty()
            for listener in self.tick_listeners:
                listener(symbol, second, event_ms, trade, first_id, last_id, bid_changes, ask_changes)

    async def run_clock(self) -> None:
        while True:
            now = self.market_time()
            target = int(now)
            first = max(self.processed_second + 1, target - CATCH_UP_SECONDS)
            for second in range(first, target + 1):
                try:
                    self.tick(second)
                except Exception:  # one bad second must not stop the market
                    log.exception("sim.tick_failed", extra={"second": second})
            self.processed_second = max(self.processed_second, target)
            await asyncio.sleep(self._wall_seconds(max(0.0, target + 1 - self.market_time())) + 0.002)

    async def run_saver(self) -> None:
        """Save once a second at most, and never spend more than ~2 % of a core on it: the state file
        holds every order ever placed, so a busy simulator saving a large file every second would eat
        the CPU of the platform it is testing (a restart may lose the last few seconds; it is a simulator)."""
        pause = 1.0
        while True:
            await asyncio.sleep(pause)
            started = time.perf_counter()
            try:
                await self.save_forked() if self.fork_saves else self.save()
            except OSError:
                log.exception("sim.save_failed", extra={"path": str(self.state_file)})
            pause = max(1.0, 50 * (time.perf_counter() - started))
