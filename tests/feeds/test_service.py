import json
import time

from core.candles.aggregate import aggregate_series
from core.candles.candle import MINUTE_MS, ClosedCandle
from core.candles.health import stale_feeds
from core.candles.store import load_candles, read_stream
from core.infra.bus import EXTRA_SYMBOLS, candle_stream
from core.infra.config import TIMEFRAMES
from core.infra.db import get_engine
from core.infra.liveness import write_liveness
from tests.feeds.conftest import wait_until
from tests.feeds.venue import kline_message


def streamed(redis_client, service, symbol="BTCUSDT", timeframe="1m"):
    return read_stream(redis_client, service.venue, symbol, timeframe, count=10_000)


def expected_candles(venue, service, symbol: str, count: int) -> list[ClosedCandle]:
    from decimal import Decimal

    minutes = [
        ClosedCandle(service.venue, symbol, "1m", t, *(Decimal(x) for x in (o, h, low, c, v)))
        for t, o, h, low, c, v in venue.minutes[symbol][:count]
    ]
    return aggregate_series(minutes, TIMEFRAMES)


def ohlcv(candles):
    return [(c.timeframe, c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in candles]


def feed_for(run_feed, venue, symbols=("BTCUSDT",), **options):
    return run_feed(f"ws://{venue.url}", f"http://{venue.url}", list(symbols), clock=venue.now, **options)


def test_connect_backfills_then_live_closes_make_every_timeframe(venue, run_feed, redis_client):
    with feed_for(run_feed, venue) as service:
        wait_until(lambda: len(streamed(redis_client, service)) == 30)
        for _ in range(15):
            venue.advance()
        wait_until(lambda: len(streamed(redis_client, service)) == 45)
        want = expected_candles(venue, service, "BTCUSDT", 45)
        assert service.pipeline.flush()
        for timeframe in TIMEFRAMES:
            mine = streamed(redis_client, service, timeframe=timeframe)
            assert ohlcv(mine) == ohlcv([c for c in want if c.timeframe == timeframe]), timeframe
            with get_engine().connect() as conn:
                assert ohlcv(load_candles(conn, service.venue, "BTCUSDT", timeframe)) == ohlcv(mine)
        assert service.pipeline.stats.summary()["stream_latency_ms"]["p99"] is not None


def test_lost_messages_are_filled_from_rest_without_duplicates(venue, run_feed, redis_client):
    with feed_for(run_feed, venue) as service:
        wait_until(lambda: len(streamed(redis_client, service)) == 30)
        for minute in range(10):
            venue.advance(send=minute % 3 == 2)  # two of every three closes never arrive
        wait_until(lambda: len(streamed(redis_client, service)) == 39)
        opens = [c.open_time for c in streamed(redis_client, service)]
        assert opens == [venue.start_ms + i * MINUTE_MS for i in range(39)]
        assert service.pipeline.stats.gaps_filled >= 6


def test_a_venue_closing_the_socket_every_few_messages_loses_and_repeats_nothing(venue, run_feed, redis_client):
    venue.drop_every = 3
    with feed_for(run_feed, venue) as service:
        wait_until(lambda: len(streamed(redis_client, service)) == 30)
        for _ in range(20):
            venue.advance()
            time.sleep(0.05)
        wait_until(lambda: len(streamed(redis_client, service)) == 50, timeout=20)
        time.sleep(0.3)
        assert service.pipeline.flush()
        opens = [c.open_time for c in streamed(redis_client, service)]
        assert opens == [venue.start_ms + i * MINUTE_MS for i in range(50)]
        with get_engine().connect() as conn:
            assert len(load_candles(conn, service.venue, "BTCUSDT", "1m")) == 50
        assert service.state.reconnects >= 3


def test_reconnects_fast_after_a_drop_and_soon_after_the_venue_is_back(venue, run_feed, redis_client):
    with feed_for(run_feed, venue) as service:
        wait_until(lambda: service.state.connected)
        venue.drop_all()
        wait_until(lambda: len(venue.connects) == 2, timeout=2)  # the first retry waits backoff_first (0.2 s)
        venue.refuse = True
        venue.drop_all()
        time.sleep(4)  # several refused attempts: the backoff grows but stays short
        venue.refuse = False
        wait_until(lambda: len(venue.connects) == 3, timeout=5)  # the backoff is capped at backoff_max (2 s)
        wait_until(lambda: service.state.connected)
        assert service.state.reconnects >= 2  # the drop and at least one refused attempt


def test_a_silent_connection_is_detected_by_ping_and_replaced(venue, run_feed, redis_client):
    with feed_for(run_feed, venue) as service:
        wait_until(lambda: service.state.connected)
        venue.frozen = True
        wait_until(lambda: len(venue.connects) >= 2, timeout=6)
        venue.frozen = False
        assert "ping" in (service.state.last_error or "").lower() or service.state.reconnects >= 1


def test_malformed_and_back_in_time_messages_are_skipped(venue, run_feed, redis_client):
    with feed_for(run_feed, venue) as service:
        wait_until(lambda: len(streamed(redis_client, service)) == 30)
        old_row = venue.minutes["BTCUSDT"][3]
        venue.send("garbage{")
        venue.send(json.dumps({"stream": "x", "data": {"e": "kline", "k": {"i": "1m"}}}))
        venue.send(kline_message("BTCUSDT", old_row, True, old_row[0] + MINUTE_MS))
        venue.advance()
        wait_until(lambda: len(streamed(redis_client, service)) == 31)
        stats = service.pipeline.stats
        wait_until(lambda: stats.malformed == 2 and stats.out_of_order == 1)
        assert ohlcv(streamed(redis_client, service)) == ohlcv(
            [c for c in expected_candles(venue, service, "BTCUSDT", 31) if c.timeframe == "1m"]
        )


def test_symbols_bots_use_are_picked_up_without_restart(venue, run_feed, redis_client):
    with feed_for(run_feed, venue) as service:
        wait_until(lambda: service.state.connected)
        redis_client.sadd(EXTRA_SYMBOLS, "ETHUSDT", "NOPEUSDT", "bad sym")
        wait_until(lambda: len(streamed(redis_client, service, "ETHUSDT")) == 30)
        venue.advance()
        wait_until(lambda: len(streamed(redis_client, service, "ETHUSDT")) == 31)
        wait_until(lambda: "NOPEUSDT" in service.rejected)
        assert "bad sym" in service.rejected and "ethusdt@kline_1m" in venue.subscriptions
        assert service.symbols == ["BTCUSDT", "ETHUSDT"]


def test_stale_feed_shows_on_health_and_forces_a_reconnect(venue, run_feed, redis_client):
    with feed_for(run_feed, venue, stale_after_s=0.6) as service:
        wait_until(lambda: service.state.connected)
        # The venue's clock stands still and sends nothing: after 0.6 s the feed is stale.
        wait_until(lambda: service.state.stale, timeout=5)
        write_liveness("feeds", service.info(), redis_client)
        stale = stale_feeds(redis_client, now=time.time() + 1)
        assert [s["symbol"] for s in stale] == ["BTCUSDT"]
        wait_until(lambda: len(venue.connects) >= 2, timeout=5)
        redis_client.delete(candle_stream(service.venue, "BTCUSDT", "1m"))
