"""The feed against the real simulator (Binance protocol, its own clock and REST history)."""

import pytest

from core.candles.candle import TIMEFRAME_MS
from core.candles.store import read_stream
from core.exchanges.spot.registry import make_exchange
from core.infra.bus import book_key
from core.infra.config import TIMEFRAMES
from tests.feeds.conftest import wait_until


@pytest.fixture(scope="module")
def sim_options() -> dict:
    """The venue pings every 2 s, so a dropped connection is noticed fast."""
    return {"ws_ping_interval": 2.0}


def test_backfilled_candles_equal_the_simulators_klines_and_a_drop_is_repaired(sim, run_feed, redis_client):
    venue = make_exchange("sim", api_key="", api_secret="", base_url=sim.url)
    with run_feed(sim.ws_url, sim.url, ["BTCUSDT", "SOLUSDT"]) as service:
        wait_until(lambda: service.state.connected and read_stream(redis_client, service.venue, "SOLUSDT", "1m"))
        for timeframe in TIMEFRAMES:
            mine = read_stream(redis_client, service.venue, "BTCUSDT", timeframe, count=1000)
            if not mine:
                continue  # the current 4h bucket may not have closed any 1h/4h candle yet
            theirs = venue.klines(
                "BTCUSDT", timeframe, start_ms=mine[0].open_time, end_ms=mine[-1].open_time, limit=1000
            )
            assert [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in mine] == [
                (k.open_time_ms, k.open, k.high, k.low, k.close, k.volume) for k in theirs
            ], timeframe
            assert all(c.open_time % TIMEFRAME_MS[timeframe] == 0 for c in mine)
        reconnects = service.state.reconnects
        sim.set_faults(drop_ws_now=True)
        wait_until(lambda: service.state.reconnects > reconnects and service.state.connected, timeout=5)
        # Book ticks flow for the symbols shown on pages.
        wait_until(lambda: redis_client.get(book_key(service.venue, "SOLUSDT")), timeout=5)
