"""The engine process's pairs: one ArbEngine per configured pair (arb/engine.py) in one event loop, sharing the two
venue connections. It checks at start that every pair's markets are listed by their venues, routes the admins'
commands (one Redis list) to the pair each names, publishes each pair's status under its own key, and stops
every pair together (no new entry anywhere before any pair cancels orders).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable

from arb.config import ArbConfig
from arb.engine import ArbEngine
from arb.risk_watch import AccountState
from arb.store import ArbStore
from arb.venues import unlisted_market
from core.exchanges.perp.venue import PerpVenue
from core.infra.bus import ARB_PAIRS, ARB_STATUS_CHANNEL, arb_status_key
from core.infra.config import ConfigError
from core.models.arb import STATUS_TTL_S

log = logging.getLogger("arb")
INFLIGHT_WAIT_S = 30.0  # how long a stop waits for the trades in flight of all pairs


def status_publisher(pairs: list[str], get_redis: Callable) -> Callable[[dict], None]:
    """Publish one pair's snapshot under its own key, and the list of pairs beside it (the page reads both)."""
    names = json.dumps(pairs)

    def publish(snapshot: dict) -> None:
        payload = json.dumps(snapshot, default=str)
        pipe = get_redis().pipeline(transaction=False)
        pipe.set(arb_status_key(str(snapshot["pair"])), payload, ex=STATUS_TTL_S)
        pipe.set(ARB_PAIRS, names, ex=STATUS_TTL_S)
        pipe.publish(ARB_STATUS_CHANNEL, payload)
        pipe.execute()

    return publish


class CommandRouter:
    """The admins' commands from the one Redis list, each handed to the engine of the pair it names. A malformed
    command or one for a pair this process does not trade goes to the first pair, whose engine logs or refuses
    it (arb/controls.py): every command gets its answer."""

    def __init__(self, take: Callable[[], list[str]], pairs: list[str]):
        self._take = take
        self._inbox: dict[str, list[str]] = {pair: [] for pair in pairs}
        self._first = pairs[0]
        self._lock = threading.Lock()  # the engines look from worker threads (asyncio.to_thread)

    def taker(self, pair: str) -> Callable[[], list[str]]:
        def take() -> list[str]:
            with self._lock:
                for raw in self._take():
                    self._inbox[self._pair_of(raw)].append(raw)
                taken, self._inbox[pair] = self._inbox[pair], []
            return taken

        return take

    def _pair_of(self, raw: str) -> str:
        try:
            pair = json.loads(raw).get("pair")
        except (ValueError, AttributeError):
            return self._first
        return pair if isinstance(pair, str) and pair in self._inbox else self._first


class SharedAccountReads:
    """Each venue's account and positions read once for all the pairs whose risk watch asks within WINDOW_S of each
    other (they wake on the same beat), not once per pair: ten pairs ask the venues ten times less. A watch's second,
    confirming read comes 0.2 s later (arb/risk_watch.py): never the first one again."""

    WINDOW_S = 0.05

    def __init__(self, venues: dict[str, PerpVenue]):
        self.venues = venues
        self._last: dict[str, tuple[float, asyncio.Task]] = {}

    def read(self, venue: str) -> Awaitable[AccountState]:
        now = time.monotonic()
        last = self._last.get(venue)
        if last is None or now - last[0] > self.WINDOW_S:
            task = asyncio.ensure_future(self.venues[venue].account_state())
            task.add_done_callback(lambda done: done.cancelled() or done.exception())  # each reader sees it
            last = self._last[venue] = (now, task)
        return asyncio.shield(last[1])  # a reader that times out leaves the read to the others


class PairsRunner:
    """Every configured pair's engine, started, watched and stopped together."""

    def __init__(
        self,
        configs: list[ArbConfig],
        venues: dict[str, PerpVenue],
        publish: Callable[[dict], None] | None = None,
        take_commands: Callable[[], list[str]] | None = None,
        store_factory: Callable[[int], ArbStore | None] = lambda pool_size: ArbStore(pool_size=pool_size),
    ):
        pairs = [cfg.pair for cfg in configs]
        router = CommandRouter(take_commands, pairs) if take_commands is not None else None
        pool_size = 2 if len(configs) == 1 else 1  # ten pairs must not take fifty database connections
        self.venues = venues
        self.engines = [
            ArbEngine(
                cfg, venues, store_factory(pool_size), publish, router.taker(cfg.pair) if router is not None else None
            )
            for cfg in configs
        ]
        if len(self.engines) > 1:
            reads = SharedAccountReads(venues)
            for engine in self.engines:
                engine.account_reads = reads.read

    def engine(self, pair: str) -> ArbEngine:
        return next(engine for engine in self.engines if engine.cfg.pair == pair)

    def states(self) -> str:
        """Each pair's state in one line (the process's liveness, shown on the System page)."""
        return ", ".join(f"{engine.cfg.pair} {engine.state}" for engine in self.engines)

    async def start(self) -> None:
        """Refuse pairs whose markets the venues do not list (ConfigError), then start every pair; a pair that fails
        to start is raised once every other pair's start has ended (none is left starting behind a stop)."""
        problem = await unlisted_market(self.venues, [engine.cfg for engine in self.engines])
        if problem is not None:
            raise ConfigError(problem)
        results = await asyncio.gather(*(engine.start() for engine in self.engines), return_exceptions=True)
        failed = [result for result in results if isinstance(result, BaseException)]
        if failed:
            raise failed[0]

    async def stop(self) -> bool:
        """No new entry on any pair, every trade in flight finished, then each pair stopped; the venues closed
        last. True when every pair stopped clean."""
        for engine in self.engines:
            engine.stopping = True
        inflight = [e.inflight for e in self.engines if e.inflight is not None and not e.inflight.done()]
        if inflight:
            await asyncio.wait([asyncio.shield(task) for task in inflight], timeout=INFLIGHT_WAIT_S)
        clean = await asyncio.gather(*(engine.stop(close_venues=False) for engine in self.engines))
        await self.close_venues()
        return all(clean)

    async def close_venues(self) -> None:
        for venue in self.venues.values():
            with contextlib.suppress(Exception):
                await venue.close()
