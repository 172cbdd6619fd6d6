"""`aristobot bench feeds`: closed 1m kline messages (real BTCUSDT candles, Binance protocol) through
parse -> aggregate (3m..4h) -> Redis streams + live events -> Postgres, as the feeds process runs them.

A producer thread offers messages at a steady rate, stamping each with its event time as it is
sent; the pipeline thread drains them in batches. Reported: sustained messages/s and the latency
from event time to the Redis stream (p50/p99/max), then the unpaced maximum. The bench writes under
the venue name "bench" and deletes what it wrote.
"""

from __future__ import annotations

import collections
import os
import queue
import sys
import threading
import time

import pandas as pd
from sqlalchemy import text

from bench.data import data_dir
from core.candles.pipeline import CandlePipeline
from core.infra.bus import get_redis
from core.infra.config import TIMEFRAMES
from core.infra.db import get_engine
from core.percentiles import summary

VENUE = "bench"
BATCH_MAX = 200
TICK_S = 0.002
SWITCH_INTERVAL_S = 0.001


def _templates(symbols: int, count: int) -> list[str]:
    """Message texts with an @E@ hole: minute i of symbol i % symbols."""
    minutes = count // symbols + 1
    frame = pd.read_csv(data_dir() / "BTCUSDT-1m.csv", nrows=minutes, dtype=str)
    rows = list(frame.itertuples(index=False, name=None))
    out = []
    for i in range(count):
        symbol = f"BENCH{i % symbols:03d}"
        t, o, h, low, c, v = rows[i // symbols]
        out.append(
            f'{{"stream":"{symbol.lower()}@kline_1m","data":{{"e":"kline","E":@E@,"s":"{symbol}",'
            f'"k":{{"t":{t},"T":{int(t) + 59_999},"s":"{symbol}","i":"1m","o":"{o}","h":"{h}",'
            f'"l":"{low}","c":"{c}","v":"{v}","x":true}}}}}}'
        )
    return out


def _pipeline() -> CandlePipeline:
    pipeline = CandlePipeline(VENUE, client=get_redis(), engine=get_engine(), timeframes=TIMEFRAMES)
    pipeline.stats.stream_latency_ms = collections.deque()  # every sample, not a window
    pipeline.stats.stored_latency_ms = collections.deque()
    return pipeline


def _cleanup(symbols: int) -> None:
    client = get_redis()
    keys = list(client.scan_iter(f"*:candles:{VENUE}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    with get_engine().begin() as conn:
        conn.execute(text("DELETE FROM candles WHERE venue = :venue"), {"venue": VENUE})


def _consume(pipeline: CandlePipeline, inbox: queue.SimpleQueue, expected: int, done: list[float]) -> None:
    seen = 0
    while seen < expected:
        batch = [inbox.get()]
        while len(batch) < BATCH_MAX:
            try:
                batch.append(inbox.get_nowait())
            except queue.Empty:
                break
        pipeline.process_messages(batch)
        seen += len(batch)
    pipeline.flush(timeout=60)  # sustained means stored too, not only streamed
    done.append(time.perf_counter())


def _run(templates: list[str], rate: float | None) -> dict:
    pipeline = _pipeline()
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    done: list[float] = []
    consumer = threading.Thread(target=_consume, args=(pipeline, inbox, len(templates), done), daemon=True)
    consumer.start()
    started = time.perf_counter()
    if rate is None:
        stamp = str(int(time.time() * 1000))
        for template in templates:
            inbox.put(template.replace("@E@", stamp, 1))
    else:
        sent = 0
        while sent < len(templates):
            due = min(len(templates), int((time.perf_counter() - started) * rate) + 1)
            stamp = str(int(time.time() * 1000))
            for template in templates[sent:due]:
                inbox.put(template.replace("@E@", stamp, 1))
            sent = due
            time.sleep(TICK_S)
    offered_s = time.perf_counter() - started
    consumer.join()
    elapsed = done[0] - started
    stats = pipeline.stats
    if stats.malformed or stats.closed != len(templates):
        raise RuntimeError(
            f"bench messages lost: closed {stats.closed} of {len(templates)}, malformed {stats.malformed}"
        )
    return {
        "messages": len(templates),
        "seconds": round(elapsed, 3),
        "offered_seconds": round(offered_s, 3),
        "msgs_per_s": round(len(templates) / elapsed),
        "stream_latency_ms": summary(stats.stream_latency_ms, 2),
        "stored_latency_ms": summary(stats.stored_latency_ms, 2),
    }


def run_feed_bench(seconds: float = 10.0, rate: int = 6000, symbols: int = 50) -> dict:
    # As in the feeds process: a thread woken by its socket gets the interpreter within 1 ms, not 5.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    load_before = round(os.getloadavg()[0], 2)  # other processes on the machine skew latency: say how busy it was
    sustained_count = int(seconds * rate)
    templates = _templates(symbols, sustained_count)
    _cleanup(symbols)
    try:
        sustained = _run(templates, rate)
        _cleanup(symbols)
        maximum = _run(templates[: min(len(templates), 30_000)], None)
    finally:
        _cleanup(symbols)
    keeps_up = sustained["seconds"] <= sustained["offered_seconds"] + 0.5
    return {
        "bench": "feeds",
        "symbols": symbols,
        "timeframes": list(TIMEFRAMES),
        "offered_msgs_per_s": rate,
        "sustained_msgs_per_s": sustained["msgs_per_s"] if keeps_up else None,
        "kept_up": keeps_up,
        "p99_event_to_stream_ms": sustained["stream_latency_ms"]["p99"],
        "sustained": sustained,
        "unpaced": maximum,
        "target": {"msgs_per_s": 5000, "p99_ms": 20},
        "cpus": os.cpu_count(),
        "load_avg_1m_before": load_before,
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
        "meets_target": keeps_up and rate >= 5000 and (sustained["stream_latency_ms"]["p99"] or 1e9) < 20,
    }
