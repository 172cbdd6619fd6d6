"""Closed 1m candles in, everything downstream out: higher timeframes, Redis stream + live event,
Postgres row, bot ticks. Used by the feeds process (live and backfill) and by the feed benchmark.

Order per batch: Redis first (what bots and pages wait for), then Postgres, then ticks (a tick may
read the stored candle). Postgres and ticks run on a writer thread so an insert never delays the next
batch's streams. A Redis failure keeps the batch pending until the next one; a Postgres failure is
retried every STORE_RETRY_S: an outage delays candles but loses none.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import redis
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core import percentiles
from core.candles.aggregate import OutOfOrder, SymbolAggregator
from core.candles.candle import MINUTE_MS, ClosedCandle
from core.candles.depth import Depth
from core.candles.source_protocols import BinanceProtocol
from core.candles.store import (
    STREAM_MAXLEN,
    candle_event,
    last_streamed_open_time,
    queue_publish,
    store_candles,
)
from core.candles.ticks import TickHook, enqueue_due_ticks
from core.exchanges.spot.binance_klines import BookTick, ControlReply, KlineUpdate, MalformedMessage
from core.infra.bus import book_key, depth_key, live_channel

log = logging.getLogger(__name__)

# Ticks are for candles that just closed; a candle recovered long after its close (backfill of an
# outage) is stored and streamed but does not make bots act on stale prices.
TICK_MAX_AGE_S = 120.0
LATENCY_WINDOW = 2000
STORE_RETRY_S = 0.5

GapFiller = Callable[[str, int, int], list[ClosedCandle]]  # (symbol, first open, last open) -> 1m candles
# One raw websocket message -> what it says (core.candles.source_protocols has one per venue).
Parser = Callable[[str | bytes], Sequence[KlineUpdate | BookTick | Depth | ControlReply]]


@dataclass
class SymbolStatus:
    last_message_ts: float | None = None  # local time of the last message of any kind
    last_close_open_time: int | None = None  # open time of the last closed 1m candle
    last_close: str | None = None


@dataclass
class FeedStats:
    messages: int = 0
    closed: int = 0
    malformed: int = 0
    out_of_order: int = 0
    duplicates: int = 0
    gaps_filled: int = 0
    ticks_sent: int = 0
    stream_latency_ms: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    stored_latency_ms: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    symbols: dict[str, SymbolStatus] = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "messages": self.messages,
            "closed": self.closed,
            "malformed": self.malformed,
            "out_of_order": self.out_of_order,
            "duplicates": self.duplicates,
            "gaps_filled": self.gaps_filled,
            "ticks_sent": self.ticks_sent,
            "stream_latency_ms": percentiles.summary(self.stream_latency_ms, 2),
            "stored_latency_ms": percentiles.summary(self.stored_latency_ms, 2),
        }


class CandlePipeline:
    def __init__(
        self,
        venue: str,
        *,
        client: redis.Redis,
        engine: Engine,
        timeframes: Sequence[str],
        gap_filler: GapFiller | None = None,
        tick_hook: TickHook | None = None,
        clock: Callable[[], float] = time.time,
        stream_maxlen: int = STREAM_MAXLEN,
        parse: Parser | None = None,
    ):
        self.venue = venue
        self.client = client
        self.engine = engine
        self.timeframes = tuple(timeframes)
        self.gap_filler = gap_filler
        self.tick_hook = tick_hook
        self.clock = clock
        self.stream_maxlen = stream_maxlen
        self.parse: Parser = parse or BinanceProtocol(venue).parse
        self.stats = FeedStats()
        self.aggregators: dict[str, SymbolAggregator] = {}
        self._published: dict[tuple[str, str], int] = {}  # (symbol, tf) -> last open time streamed
        self._pending_publish: list[ClosedCandle] = []
        self._store_inbox: queue.Queue[list[ClosedCandle]] = queue.Queue()
        self._writer: threading.Thread | None = None
        self.control_replies: deque[ControlReply] = deque(maxlen=100)

    # --- symbols -------------------------------------------------------------------------------

    def track(self, symbol: str) -> SymbolAggregator:
        """Start aggregating a symbol; what earlier runs already streamed is not streamed again."""
        aggregator = self.aggregators.get(symbol)
        if aggregator is None:
            aggregator = self.aggregators[symbol] = SymbolAggregator(self.venue, symbol, self.timeframes)
            for timeframe in self.timeframes:
                last = last_streamed_open_time(self.client, self.venue, symbol, timeframe)
                if last is not None:
                    self._published[(symbol, timeframe)] = last
            self.stats.symbols.setdefault(symbol, SymbolStatus())
        return aggregator

    def last_minute(self, symbol: str) -> int | None:
        """Open time of the last 1m candle taken (this run) or streamed (earlier runs)."""
        aggregator = self.aggregators.get(symbol)
        taken = aggregator.last_open if aggregator else None
        return taken if taken is not None else self._published.get((symbol, "1m"))

    # --- input ---------------------------------------------------------------------------------

    def process_messages(self, raws: Iterable[str | bytes]) -> None:
        now = time.time()  # liveness is wall time, whatever clock the venue runs on
        minutes: list[ClosedCandle] = []
        forming: dict[str, ClosedCandle] = {}
        books: dict[str, BookTick] = {}
        depths: dict[str, Depth] = {}
        for raw in raws:
            self.stats.messages += 1
            try:
                messages = self.parse(raw)
            except MalformedMessage as exc:
                self._malformed(exc, raw)
                continue
            for message in messages:
                if isinstance(message, ControlReply):
                    self.control_replies.append(message)
                    if message.error:
                        log.warning("feed_control_error", extra={"venue": self.venue, "error": message.error})
                    continue
                symbol = message.candle.symbol if isinstance(message, KlineUpdate) else message.symbol
                self.stats.symbols.setdefault(symbol, SymbolStatus()).last_message_ts = now
                if isinstance(message, BookTick):
                    books[symbol] = message
                elif isinstance(message, Depth):
                    depths[symbol] = message
                elif message.closed:
                    minutes.append(message.candle)
                else:
                    forming[symbol] = message.candle
        self.ingest_minutes(minutes, extra_events=self._live_events(forming, books, depths))

    def _malformed(self, exc: MalformedMessage, raw: str | bytes) -> None:
        self.stats.malformed += 1
        # Logged for the first few and then one in a thousand: a broken venue must not flood the logs.
        if self.stats.malformed <= 10 or self.stats.malformed % 1000 == 0:
            log.warning(
                "feed_message_malformed",
                extra={"venue": self.venue, "error": str(exc), "sample": str(raw[:120]), "count": self.stats.malformed},
            )

    def _live_events(
        self, forming: dict[str, ClosedCandle], books: dict[str, BookTick], depths: dict[str, Depth]
    ) -> list[tuple]:
        events = []
        for symbol, candle in forming.items():
            events.append(("publish", live_channel(self.venue, symbol), candle_event(candle, "forming")))
        for symbol, book in books.items():
            body = json.dumps({"type": "book", "venue": self.venue, **book.fields()}, separators=(",", ":"))
            events.append(("set", book_key(self.venue, symbol), body))
            events.append(("publish", live_channel(self.venue, symbol), body))
        at_ms = int(time.time() * 1000)  # when it arrived, by the wall clock the pages read it with
        for symbol, depth in depths.items():
            events.append(("set", depth_key(self.venue, symbol), depth.body(at_ms)))
        return events

    def ingest_minutes(self, minutes: Sequence[ClosedCandle], extra_events: Sequence[tuple] = ()) -> list[ClosedCandle]:
        """Take closed 1m candles (live or backfilled), in order per symbol; returns what was new."""
        produced: list[ClosedCandle] = []
        for minute in minutes:
            aggregator = self.track(minute.symbol)
            expected = self.last_minute(minute.symbol)
            if expected is not None and minute.open_time > expected + MINUTE_MS and self.gap_filler is not None:
                produced.extend(
                    self._fill_gap(self.gap_filler, minute.symbol, expected + MINUTE_MS, minute.open_time - MINUTE_MS)
                )
            produced.extend(self._take(aggregator, minute))
        self._emit(produced, extra_events)
        return produced

    def _fill_gap(self, gap_filler: GapFiller, symbol: str, first: int, last: int) -> list[ClosedCandle]:
        try:
            missing = gap_filler(symbol, first, last)
        except Exception as exc:  # the venue's REST may be down too: keep going, log the hole
            log.warning(
                "feed_gap_fill_failed",
                extra={"venue": self.venue, "symbol": symbol, "from": first, "to": last, "error": str(exc)},
            )
            return []
        out = []
        for candle in missing:
            if first <= candle.open_time <= last:
                out.extend(self._take(self.aggregators[symbol], candle))
        self.stats.gaps_filled += len(missing)
        log.info(
            "feed_gap_filled",
            extra={"venue": self.venue, "symbol": symbol, "from": first, "to": last, "candles": len(missing)},
        )
        return out

    def _take(self, aggregator: SymbolAggregator, minute: ClosedCandle) -> list[ClosedCandle]:
        try:
            higher = aggregator.add(minute)
        except OutOfOrder:
            if minute.open_time == aggregator.last_open:
                self.stats.duplicates += 1
            else:
                self.stats.out_of_order += 1
            return []
        self.stats.closed += 1
        status = self.stats.symbols.setdefault(minute.symbol, SymbolStatus())
        status.last_close_open_time, status.last_close = minute.open_time, str(minute.close)
        fresh = []
        for candle in (minute, *higher):
            key = (candle.symbol, candle.timeframe)
            if candle.open_time > self._published.get(key, -1):
                self._published[key] = candle.open_time
                fresh.append(candle)
        return fresh

    # --- output --------------------------------------------------------------------------------

    def _emit(self, produced: list[ClosedCandle], extra_events: Sequence[tuple]) -> None:
        self._pending_publish.extend(produced)
        if self._pending_publish or extra_events:
            self._publish(extra_events)

    def _publish(self, extra_events: Sequence[tuple]) -> None:
        batch = self._pending_publish
        pipe = self.client.pipeline(transaction=False)
        queue_publish(pipe, self.client, batch, self.stream_maxlen)
        for kind, name, body in extra_events:
            if kind == "set":
                pipe.set(name, body, ex=60)
            else:
                pipe.publish(name, body)
        try:
            results = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            log.warning("feed_redis_unavailable", extra={"venue": self.venue, "pending": len(batch), "error": str(exc)})
            return
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            log.warning("feed_redis_command_failed", extra={"venue": self.venue, "error": str(failed[0])[:200]})
        if batch and isinstance(results[0], int) and results[0]:
            # An id not above the stream's last: that candle was streamed before (kept out, not duplicated).
            log.warning("feed_stream_rejected", extra={"venue": self.venue, "count": results[0]})
        now_ms = self.clock() * 1000
        for candle in batch:
            if candle.timeframe == "1m" and candle.event_ms is not None:
                self.stats.stream_latency_ms.append(now_ms - candle.event_ms)
        self._pending_publish = []
        if batch:
            self._to_store(batch)

    # --- Postgres and ticks, on a writer thread: a slow insert never delays the streams --------------

    def _to_store(self, batch: list[ClosedCandle]) -> None:
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(
                target=self._write_forever, name=f"candles-writer-{self.venue}", daemon=True
            )
            self._writer.start()
        self._store_inbox.put(batch)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every streamed candle is stored and ticked; False if that took longer than `timeout`."""
        deadline = time.monotonic() + timeout
        while self._store_inbox.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def _write_forever(self) -> None:
        while True:
            batches = [self._store_inbox.get()]
            while True:
                try:
                    batches.append(self._store_inbox.get_nowait())
                except queue.Empty:
                    break
            batch = [candle for part in batches for candle in part]
            while not self._store(batch):
                time.sleep(STORE_RETRY_S)  # Postgres down: hold the candles, try again
            for _ in batches:
                self._store_inbox.task_done()

    def _store(self, batch: list[ClosedCandle]) -> bool:
        try:
            store_candles(self.engine, batch)
        except SQLAlchemyError as exc:
            log.warning(
                "feed_postgres_unavailable",
                extra={"venue": self.venue, "pending": len(batch), "error": str(getattr(exc, "orig", exc))[:200]},
            )
            return False
        now = self.clock()
        for candle in batch:
            if candle.timeframe == "1m" and candle.event_ms is not None:
                self.stats.stored_latency_ms.append(now * 1000 - candle.event_ms)
        if self.tick_hook is not None:
            self._send_ticks(batch, now, self.tick_hook)
        return True

    def _send_ticks(self, batch: list[ClosedCandle], now: float, hook: TickHook) -> None:
        fresh = [candle for candle in batch if candle.close_time / 1000 >= now - TICK_MAX_AGE_S]
        if not fresh:
            return
        try:
            self.stats.ticks_sent += len(enqueue_due_ticks(fresh, self.client, hook))
        except Exception:  # a broker hiccup must not stop candles; the unsent claims were released
            log.exception(
                "feed_tick_enqueue_failed",
                extra={"venue": self.venue, "candles": len(fresh), "first_open_time": fresh[0].open_time},
            )
