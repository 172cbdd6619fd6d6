"""The feed loop: one websocket per heartbeat source (its protocol: core.candles.source_protocols), reconnecting
forever.

Each (re)connection starts with a REST backfill from the last candle taken, and every gap the stream
shows is filled the same way, so candles are never missing nor duplicated. Everything that touches
the pipeline runs on one worker thread, in arrival order, so the event loop stays free for pings.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from core.candles.candle import MINUTE_MS, TIMEFRAME_MS, ClosedCandle
from core.candles.health import STALE_FEED_S
from core.candles.pipeline import CandlePipeline
from core.candles.source_protocols import BinanceProtocol, KlineProtocol
from core.exchanges.errors import ExchangeError
from core.exchanges.ratelimit import background
from core.exchanges.spot.base import Exchange
from core.infra.bus import EXTRA_SYMBOLS
from core.notifications import events as notifications

log = logging.getLogger(__name__)

KLINE_PAGE = 1000
BATCH_MAX = 1000


class ConnectionLost(Exception):
    """The stream ended without an error (a clean close by the venue)."""


@dataclass
class FeedOptions:
    ws_base: str
    symbols: list[str]
    ping_interval: float = 5.0
    ping_timeout: float = 5.0
    open_timeout: float = 3.0
    backoff_first: float = 0.2
    backoff_max: float = 2.0  # so the feed is back within a few seconds of the venue
    symbols_poll_s: float = 3.0
    stale_after_s: float = STALE_FEED_S
    book_ticker: bool = True
    follow_key: str = EXTRA_SYMBOLS  # the Redis set of symbols bots ask this source for
    close_grace_ms: int = 5000  # a minute without a closed flag is final this long after its end
    keepalive_s: float = 25.0  # the protocol's keep-alive text this often (Bitget drops a silent client after 30 s)


@dataclass
class _Backfill:
    symbols: list[str]


_CLOSE_OVERDUE = object()  # marker: close the forming minutes of venues without a closed flag that are over


@dataclass
class FeedState:
    connected: bool = False
    connected_since: float | None = None
    reconnects: int = 0
    last_error: str | None = None
    since: dict[str, float] = field(default_factory=dict)  # symbol -> followed since (a venue never reached: stale)
    stale: set[str] = field(default_factory=set)


def valid_symbol(symbol: str) -> bool:
    return isinstance(symbol, str) and symbol.isalnum() and symbol.isupper() and 2 <= len(symbol) <= 32


def fetch_minutes(exchange: Exchange, venue: str, symbol: str, first: int, last: int) -> list[ClosedCandle]:
    """Closed 1m candles with open time in [first, last] from the venue's REST klines, page by page."""
    out: list[ClosedCandle] = []
    start = first
    while start <= last:
        with background():  # a backfill yields the venue's budget to orders
            page = exchange.klines(symbol, "1m", start_ms=start, end_ms=last, limit=KLINE_PAGE)
        fresh = [k for k in page if start <= k.open_time_ms <= last]
        out.extend(
            ClosedCandle(venue, symbol, "1m", k.open_time_ms, k.open, k.high, k.low, k.close, k.volume) for k in fresh
        )
        if len(page) < KLINE_PAGE or not fresh:
            break
        start = fresh[-1].open_time_ms + MINUTE_MS
    return out


class FeedService:
    def __init__(
        self,
        options: FeedOptions,
        pipeline: CandlePipeline,
        exchange: Exchange,
        client: redis.Redis,
        clock: Callable[[], float] = time.time,
        protocol: KlineProtocol | None = None,
    ):
        """`clock` is the venue's time (which minute closed last); liveness always uses the wall clock.
        `protocol` defaults to Binance's (the simulator's); the pipeline must parse with the same one."""
        self.options = options
        self.pipeline = pipeline
        self.exchange = exchange
        self.client = client
        self.clock = clock
        self.venue = pipeline.venue
        self.protocol = protocol or BinanceProtocol(self.venue, options.book_ticker)
        self.symbols: list[str] = [s for s in options.symbols if valid_symbol(s)]
        self.rejected: set[str] = set()
        self.state = FeedState(since=dict.fromkeys(self.symbols, time.time()))
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="feed-pipeline")
        self._request_ids: dict[int, str] = {}
        self._next_id = 1

    # --- status ---------------------------------------------------------------------------------

    def info(self) -> dict:
        """Liveness info: connection, per-symbol status, counters and latencies."""
        stats = self.pipeline.stats
        symbols = {}
        for symbol in self.symbols:
            status = stats.symbols.get(symbol)
            symbols[symbol] = {
                "since_ts": self.state.since.get(symbol),
                "last_message_ts": status.last_message_ts if status else None,
                "last_close_open_time": status.last_close_open_time if status else None,
                "last_close": status.last_close if status else None,
            }
        return {
            "venue": self.venue,
            "connected": self.state.connected,
            "connected_since": self.state.connected_since,
            "reconnects": self.state.reconnects,
            "last_error": self.state.last_error,
            "symbols": symbols,
            "rejected": sorted(self.rejected),
            "timeframes": list(self.pipeline.timeframes),
            "stale_after_s": self.options.stale_after_s,
            "stale": sorted(self.state.stale),
            **stats.summary(),
        }

    def stale_symbols(self, now: float | None = None) -> list[str]:
        now = now or time.time()
        stale = []
        for symbol in self.symbols:
            status = self.pipeline.stats.symbols.get(symbol)
            last = (status.last_message_ts if status else None) or self.state.since.get(symbol)
            if last is not None and now - last > self.options.stale_after_s:
                stale.append(symbol)
        return stale

    # --- running --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                await self._connect_and_stream(stop)
            except (OSError, ConnectionClosed, ConnectionLost, InvalidHandshake, TimeoutError) as exc:
                self.state.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.warning(
                    "feed_disconnected", extra={"venue": self.venue, "error": self.state.last_error, "attempt": attempt}
                )
            except Exception as exc:  # Redis or Postgres down mid-backfill: start over, never exit
                self.state.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.exception("feed_session_failed", extra={"venue": self.venue, "attempt": attempt})
            finally:
                was_connected = self.state.connected
                self.state.connected = False
                if was_connected:
                    attempt = 0
            if stop.is_set():
                break
            self.state.reconnects += 1
            delay = min(self.options.backoff_max, self.options.backoff_first * 2**attempt)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay * random.uniform(0.8, 1.0))
        self._executor.shutdown(wait=True)
        if not self.pipeline.flush(timeout=10):
            log.warning("feed_stopped_with_unstored_candles", extra={"venue": self.venue})

    async def _connect_and_stream(self, stop: asyncio.Event) -> None:
        url = self.protocol.url(self.options.ws_base, self.symbols)
        async with connect(
            url,
            ping_interval=self.options.ping_interval,
            ping_timeout=self.options.ping_timeout,
            open_timeout=self.options.open_timeout,
            close_timeout=1,
            max_queue=None,
            compression=None,
            proxy=None,
        ) as ws:
            now = time.time()
            self.state.connected, self.state.connected_since = True, now
            for symbol in self.symbols:
                self.state.since.setdefault(symbol, now)
            for message in self.protocol.on_connect(list(self.symbols)):
                await ws.send(message)
            log.info("feed_connected", extra={"venue": self.venue, "symbols": self.symbols})
            queue: asyncio.Queue = asyncio.Queue()
            queue.put_nowait(_Backfill(list(self.symbols)))
            reader = asyncio.create_task(self._read(ws, queue))
            consumer = asyncio.create_task(self._consume(queue))
            watcher = asyncio.create_task(self._watch(ws, queue, stop))
            stopper = asyncio.create_task(stop.wait())
            try:
                done, _ = await asyncio.wait({reader, consumer, watcher, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (watcher, stopper):
                    task.cancel()
                if not reader.done():
                    reader.cancel()
                queue.put_nowait(None)  # consume what arrived before the drop, then stop
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer
            for task in done:
                if task is not stopper and not task.cancelled() and task.exception() is not None:
                    raise task.exception()
            if reader in done and not stop.is_set():
                raise ConnectionLost(f"the venue closed the connection (code {ws.close_code})")

    async def _read(self, ws: ClientConnection, queue: asyncio.Queue) -> None:
        async for message in ws:
            queue.put_nowait(message)

    async def _consume(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, _Backfill):
                await loop.run_in_executor(self._executor, self._backfill, item.symbols)
                continue
            if item is _CLOSE_OVERDUE:
                await loop.run_in_executor(self._executor, self._close_overdue)
                continue
            batch = [item]
            while len(batch) < BATCH_MAX and not queue.empty():
                nxt = queue.get_nowait()
                if not isinstance(nxt, str | bytes):
                    queue.put_nowait(nxt)  # a marker: process it on the next turn
                    break
                batch.append(nxt)
            await loop.run_in_executor(self._executor, self.pipeline.process_messages, batch)

    async def _watch(self, ws: ClientConnection, queue: asyncio.Queue, stop: asyncio.Event) -> None:
        """Every few seconds: the venue's app-level keep-alive, new symbols bots use, rejected subscriptions, and the
        stale-feed watchdog."""
        kept_alive = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(self.options.symbols_poll_s)
            if self.protocol.keepalive and time.monotonic() - kept_alive >= self.options.keepalive_s:
                await ws.send(self.protocol.keepalive)
                kept_alive = time.monotonic()
            self._note_rejections()
            queue.put_nowait(_CLOSE_OVERDUE)
            new = await asyncio.get_running_loop().run_in_executor(None, self._new_extra_symbols)
            for symbol in new:
                request_id = self._next_id
                self._next_id += 1
                self._request_ids[request_id] = symbol
                self.symbols.append(symbol)
                self.state.since[symbol] = time.time()
                for message in self.protocol.add(symbol, request_id):
                    await ws.send(message)
                queue.put_nowait(_Backfill([symbol]))
                log.info("feed_symbol_added", extra={"venue": self.venue, "symbol": symbol})
            if (
                self._check_stale()
                and self.state.connected_since
                and time.time() - self.state.connected_since > self.options.stale_after_s
            ):
                # Silent but "alive" connection: start over (reconnect + backfill).
                log.warning("feed_stale_reconnect", extra={"venue": self.venue})
                await ws.close()
                return

    def _new_extra_symbols(self) -> list[str]:
        try:
            extra = self.client.smembers(self.options.follow_key)
        except redis.RedisError:
            return []
        new = []
        for symbol in sorted(extra):
            if symbol in self.symbols or symbol in self.rejected:
                continue
            if not valid_symbol(symbol):
                self.rejected.add(symbol)
                log.warning("feed_symbol_invalid", extra={"venue": self.venue, "symbol": symbol[:40]})
                continue
            new.append(symbol)
        return new

    def _note_rejections(self) -> None:
        replies = self.pipeline.control_replies
        while replies:
            reply = replies.popleft()
            requested = self._request_ids.pop(reply.request_id, None) if reply.request_id is not None else None
            symbol = requested or reply.symbol
            if reply.error and symbol:
                self.rejected.add(symbol)
                if symbol in self.symbols:
                    self.symbols.remove(symbol)
                log.warning("feed_symbol_rejected", extra={"venue": self.venue, "symbol": symbol, "error": reply.error})
                notifications.feed_symbol_rejected(self.venue, symbol, reply.error)

    def _check_stale(self) -> bool:
        stale = set(self.stale_symbols())
        for symbol in stale - self.state.stale:
            log.warning("feed_stale", extra={"venue": self.venue, "symbol": symbol})
        notifications.feed_stale(self.venue, stale - self.state.stale)
        for symbol in self.state.stale - stale:
            log.info("feed_recovered", extra={"venue": self.venue, "symbol": symbol})
        self.state.stale = stale
        return bool(stale)

    # --- pipeline thread -------------------------------------------------------------------------

    def _close_overdue(self) -> None:
        """A minute without trades after it has no later row to close it (Kraken sends nothing then)."""
        minutes = self.protocol.overdue(int(self.clock() * 1000) - self.options.close_grace_ms)
        if minutes:
            self.pipeline.ingest_minutes(minutes)

    def _backfill(self, symbols: list[str]) -> None:
        last_closed = int(self.clock() * 1000) // MINUTE_MS * MINUTE_MS - MINUTE_MS
        widest = max((TIMEFRAME_MS[tf] for tf in self.pipeline.timeframes), default=MINUTE_MS)
        for symbol in symbols:
            fresh = symbol not in self.pipeline.aggregators or self.pipeline.aggregators[symbol].last_open is None
            self.pipeline.track(symbol)
            last = self.pipeline.last_minute(symbol)
            if fresh:
                # Rebuild the open higher-timeframe candles from their first minute; what was already
                # streamed is not streamed again, and Postgres ignores what it has.
                anchor = last + MINUTE_MS if last is not None else last_closed
                first = anchor - anchor % widest
            else:
                first = last + MINUTE_MS
            if first > last_closed:
                continue
            try:
                minutes = fetch_minutes(self.exchange, self.venue, symbol, first, last_closed)
            except ExchangeError as exc:
                log.warning("feed_backfill_failed", extra={"venue": self.venue, "symbol": symbol, "error": str(exc)})
                continue
            self.pipeline.ingest_minutes(minutes)
            log.info(
                "feed_backfilled",
                extra={
                    "venue": self.venue,
                    "symbol": symbol,
                    "from": first,
                    "to": last_closed,
                    "candles": len(minutes),
                },
            )

    def fill_gap(self, symbol: str, first: int, last: int) -> list[ClosedCandle]:
        """The pipeline's gap filler (runs on the pipeline thread)."""
        return fetch_minutes(self.exchange, self.venue, symbol, first, last)
