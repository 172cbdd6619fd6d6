import base64
import json
import secrets
import time
from decimal import Decimal

import pytest
from celery import Celery
from sqlalchemy import create_engine

from core.candles.candle import MINUTE_MS, ClosedCandle
from core.candles.depth import read_stored
from core.candles.pipeline import CandlePipeline
from core.candles.store import expand_live_event, load_candles, read_stream
from core.candles.ticks import BotTick, TickHook, enqueue_due_ticks
from core.infra.bus import bot_tick_claim, candle_stream, depth_key, live_channel
from core.infra.config import TIMEFRAMES
from core.infra.db import get_engine

T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def kline(symbol: str, open_time: int, close: float, closed: bool = True, event_ms: int | None = None) -> str:
    price = Decimal(str(close))
    return json.dumps(
        {
            "stream": f"{symbol.lower()}@kline_1m",
            "data": {
                "e": "kline",
                "E": event_ms or open_time + MINUTE_MS,
                "s": symbol,
                "k": {
                    "t": open_time,
                    "T": open_time + MINUTE_MS - 1,
                    "s": symbol,
                    "i": "1m",
                    "o": str(price),
                    "h": str(price + 1),
                    "l": str(price - 1),
                    "c": str(price),
                    "v": "2.5",
                    "x": closed,
                },
            },
        }
    )


def fresh_symbol() -> str:
    return "T" + secrets.token_hex(4).upper()


def make_pipeline(redis_client, **options) -> CandlePipeline:
    return CandlePipeline("sim", client=redis_client, engine=get_engine(), timeframes=TIMEFRAMES, **options)


def stored(symbol: str, timeframe: str):
    with get_engine().connect() as conn:
        return load_candles(conn, "sim", symbol, timeframe)


def test_closed_minutes_reach_streams_postgres_and_live_channel(infra, redis_client):
    symbol = fresh_symbol()
    live = redis_client.pubsub()
    live.subscribe(live_channel("sim", symbol))
    live.get_message(timeout=1)
    pipeline = make_pipeline(redis_client)
    pipeline.process_messages(
        [kline(symbol, T0 + i * MINUTE_MS, 100 + i) for i in range(3)]
        + [kline(symbol, T0 + 3 * MINUTE_MS, 200, closed=False)]
    )
    assert pipeline.flush()
    assert [c.close for c in read_stream(redis_client, "sim", symbol, "1m")] == [100, 101, 102]
    [three] = read_stream(redis_client, "sim", symbol, "3m")
    assert (three.open_time, three.open, three.high, three.low, three.close, three.volume) == (
        T0,
        100,
        103,
        99,
        102,
        Decimal("7.5"),
    )
    assert [c.open_time for c in stored(symbol, "1m")] == [T0, T0 + MINUTE_MS, T0 + 2 * MINUTE_MS]
    assert [c.close for c in stored(symbol, "3m")] == [102]
    assert stored(symbol, "5m") == []  # not closed yet
    events = []
    while (message := live.get_message(timeout=0.5)) is not None:
        events.extend(event for _, event in expand_live_event(message["data"]))
    kinds = [(e["type"], e["tf"], int(e["t"])) for e in events]
    assert ("candle", "1m", T0) in kinds and ("candle", "3m", T0) in kinds
    assert ("forming", "1m", T0 + 3 * MINUTE_MS) in kinds
    assert pipeline.stats.closed == 3


def test_bad_messages_are_counted_and_skipped_good_ones_kept(infra, redis_client):
    symbol = fresh_symbol()
    pipeline = make_pipeline(redis_client)
    bad_prices = json.loads(kline(symbol, T0 + MINUTE_MS, 100))
    bad_prices["data"]["k"]["h"] = "1"  # high below open
    pipeline.process_messages(
        [
            kline(symbol, T0, 100),
            "{not json",
            json.dumps([1, 2]),
            json.dumps({"e": "kline", "k": "x"}),
            json.dumps(bad_prices),
            kline(symbol, T0 + MINUTE_MS, 101),
            kline(symbol, T0 + MINUTE_MS, 555),  # the same minute again
            kline(symbol, T0, 666),  # back in time
        ]
    )
    assert pipeline.flush()
    assert pipeline.stats.malformed == 4
    assert pipeline.stats.duplicates == 1 and pipeline.stats.out_of_order == 1
    assert [c.close for c in stored(symbol, "1m")] == [100, 101]
    assert [c.close for c in read_stream(redis_client, "sim", symbol, "1m")] == [100, 101]


def test_a_restarted_pipeline_never_streams_a_candle_twice(infra, redis_client):
    symbol = fresh_symbol()
    first = make_pipeline(redis_client)
    first.process_messages([kline(symbol, T0 + i * MINUTE_MS, 100 + i) for i in range(4)])
    second = make_pipeline(redis_client)  # a new process: replays the same minutes (backfill)
    second.process_messages([kline(symbol, T0 + i * MINUTE_MS, 100 + i) for i in range(6)])
    assert first.flush() and second.flush()
    assert [c.open_time for c in read_stream(redis_client, "sim", symbol, "1m")] == [
        T0 + i * MINUTE_MS for i in range(6)
    ]
    assert [c.open_time for c in read_stream(redis_client, "sim", symbol, "3m")] == [T0, T0 + 3 * MINUTE_MS]
    assert len(stored(symbol, "1m")) == 6


def test_postgres_outage_delays_candles_but_loses_none(infra, redis_client):
    symbol = fresh_symbol()
    pipeline = make_pipeline(redis_client)
    pipeline.engine = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:9/none", connect_args={"connect_timeout": 1}
    )
    pipeline.process_messages([kline(symbol, T0, 100)])
    assert len(read_stream(redis_client, "sim", symbol, "1m")) == 1  # streamed while Postgres was down
    assert not pipeline.flush(timeout=1.5)  # held and retried, not dropped
    assert stored(symbol, "1m") == []
    pipeline.engine = get_engine()
    pipeline.process_messages([kline(symbol, T0 + MINUTE_MS, 101)])
    assert pipeline.flush()
    assert [c.close for c in stored(symbol, "1m")] == [100, 101]


def test_due_bot_ticks_are_enqueued_once_per_bot_and_candle(infra, redis_client):
    symbol = fresh_symbol()
    start = T0
    just_after_close = (start + 3 * MINUTE_MS) / 1000 + 0.5  # the feed's clock: the 3m candle just closed

    def provider(candles):
        return [
            BotTick("workers.bots.test_tick", (bot_id, candle.open_time), f"bot:{bot_id}:{candle.open_time}")
            for candle in candles
            if candle.symbol == symbol and candle.timeframe == "3m"
            for bot_id in (1, 2)
        ]

    celery = Celery("test-ticks")
    celery.config_from_object("celeryconfig")
    probe_queue = "tick-probe-" + secrets.token_hex(4)  # a real broker queue no worker of the suite consumes

    def send_task(name, **options):
        return celery.send_task(name, queue=probe_queue, **options)

    hook = TickHook(provider, send_task)
    messages = [kline(symbol, start + i * MINUTE_MS, 100 + i) for i in range(3)]
    first = make_pipeline(redis_client, tick_hook=hook, clock=lambda: just_after_close)
    first.process_messages(messages)
    assert first.flush()
    # The same candle seen again by a restarted feed (Redis streams forgotten): still one tick per bot.
    redis_client.delete(*[candle_stream("sim", symbol, tf) for tf in TIMEFRAMES])
    again = make_pipeline(redis_client, tick_hook=hook, clock=lambda: just_after_close)
    again.process_messages(messages)
    assert again.flush()
    queued = [json.loads(raw) for raw in redis_client.lrange(probe_queue, 0, -1)]
    tasks = [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in queued]
    assert sorted(tasks) == [("workers.bots.test_tick", [1, start]), ("workers.bots.test_tick", [2, start])]


def test_a_tick_the_broker_refused_is_released_and_the_others_of_the_batch_still_go(infra, redis_client):
    """One question and one Redis round trip for a batch of closes; a send that fails releases its claim
    (a later sighting of the close may send it) without holding back the other bots' ticks."""
    symbol = fresh_symbol()
    closes = [
        ClosedCandle("sim", symbol, timeframe, T0, Decimal(1), Decimal(1), Decimal(1), Decimal(1), Decimal(1))
        for timeframe in ("1m", "3m")
    ]
    questions: list[int] = []

    def provider(candles):
        questions.append(len(candles))
        return [
            BotTick("t", (bot_id, candle.timeframe), f"bot:{bot_id}:{candle.timeframe}:{symbol}")
            for candle in candles
            for bot_id in (1, 2)
        ]

    sent: list[tuple] = []

    def send_task(name, args, kwargs):
        if args == [2, "1m"]:
            raise ConnectionError("broker gone")
        sent.append(tuple(args))

    with pytest.raises(ConnectionError):
        enqueue_due_ticks(closes, redis_client, TickHook(provider, send_task))
    assert questions == [2] and sent == [(1, "1m"), (1, "3m"), (2, "3m")]
    assert redis_client.exists(bot_tick_claim(f"bot:2:1m:{symbol}")) == 0  # released
    assert redis_client.exists(bot_tick_claim(f"bot:1:1m:{symbol}")) == 1
    assert enqueue_due_ticks(
        closes, redis_client, TickHook(provider, lambda name, args, kwargs: sent.append(args))
    ) == [BotTick("t", (2, "1m"), f"bot:2:1m:{symbol}")]


def test_old_candles_from_a_backfill_do_not_tick_bots(infra, redis_client):
    symbol = fresh_symbol()
    calls = []

    def provider(candles):
        calls.extend(candles)
        return []

    # the real clock: T0 is long gone
    pipeline = make_pipeline(redis_client, tick_hook=TickHook(provider, lambda *a, **k: None))
    pipeline.process_messages([kline(symbol, T0, 100)])
    assert pipeline.flush() and len(stored(symbol, "1m")) == 1
    assert calls == []


def test_a_small_book_is_stored_for_the_pages_with_its_arrival_time_and_expires(infra, redis_client):
    symbol = fresh_symbol()
    book = {"lastUpdateId": 9, "bids": [["100.5", "2"], ["100.4", "1"]], "asks": [["100.6", "3"]]}
    before_ms = int(time.time() * 1000)
    pipeline = make_pipeline(redis_client)
    pipeline.process_messages([json.dumps({"stream": f"{symbol.lower()}@depth10", "data": book})])
    stored = read_stored(redis_client.get(depth_key("sim", symbol)))
    assert stored.bids == ((Decimal("100.5"), Decimal(2)), (Decimal("100.4"), Decimal(1)))
    assert stored.asks == ((Decimal("100.6"), Decimal(3)),) and stored.at_ms >= before_ms
    assert 0 < redis_client.ttl(depth_key("sim", symbol)) <= 60  # gone a minute after the feed stops
    assert pipeline.stats.malformed == 0 and pipeline.stats.symbols[symbol].last_message_ts is not None
