import asyncio
import secrets
import threading
import time
from contextlib import contextmanager

import pytest

from core.candles.pipeline import CandlePipeline
from core.candles.source_protocols import protocol_for
from core.candles.ticks import TickHook
from core.exchanges.spot.registry import make_exchange
from core.infra.config import TIMEFRAMES
from core.infra.db import get_engine
from feeds.service import FeedOptions, FeedService
from tests.feeds.venue import ScriptedVenue, real_minutes


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture()
def venue():
    scripted = ScriptedVenue(
        {"BTCUSDT": real_minutes("BTCUSDT", 600), "ETHUSDT": real_minutes("ETHUSDT", 600)}, revealed=30
    ).start()
    yield scripted
    scripted.stop()


@pytest.fixture()
def run_feed(infra, redis_client):
    """Start a FeedService on its own event loop thread against a venue; stops it at the end of the test."""
    running = []

    @contextmanager
    def start(
        ws_base: str,
        rest_base: str,
        symbols: list[str],
        clock=time.time,
        venue: str | None = None,
        tick_hook: TickHook | None = None,
        **options,
    ):
        """`venue`: a real venue's protocol and name (bitget, kraken); else Binance's under a name unique per test.
        `tick_hook`: the bots' ticks at each close (as `python -m feeds` hands it in)."""
        label = venue or "t" + secrets.token_hex(4)  # the candles' venue name
        exchange = make_exchange(venue or "binance", api_key="", api_secret="", base_url=rest_base)
        protocol = protocol_for(venue) if venue else None
        pipeline = CandlePipeline(
            label,
            client=redis_client,
            engine=get_engine(),
            timeframes=TIMEFRAMES,
            clock=clock,
            parse=protocol.parse if protocol else None,
            tick_hook=tick_hook,
        )
        defaults = {"ping_interval": 1.0, "ping_timeout": 1.0, "symbols_poll_s": 0.2, "open_timeout": 2.0}
        service = FeedService(
            FeedOptions(ws_base=ws_base, symbols=symbols, **{**defaults, **options}),
            pipeline,
            exchange,
            redis_client,
            clock=clock,
            protocol=protocol,
        )
        pipeline.gap_filler = service.fill_gap
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        thread = threading.Thread(target=loop.run_until_complete, args=(service.run(stop),), daemon=True)
        thread.start()

        def halt():
            loop.call_soon_threadsafe(stop.set)
            thread.join(10)
            assert not thread.is_alive(), "the feed did not stop"

        running.append(halt)
        try:
            yield service
        finally:
            halt()
            running.remove(halt)

    yield start
    for halt in running:
        halt()
