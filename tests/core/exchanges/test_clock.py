"""Clock offset measured over a real HTTP round trip and from scripted clocks."""

from __future__ import annotations

import itertools
import time

from core.exchanges.clock import VenueClock, measure_offset
from core.exchanges.spot.binance import BinanceSpot
from tests.core.exchanges.conftest import Reply


def test_offset_uses_the_midpoint_of_each_round_trip():
    local = iter([1000.0, 1100.0])  # sent at 1000, answer back at 1100: server time is for 1050
    sample = measure_offset(lambda: 6050, samples=1, local_ms=lambda: next(local))
    assert (sample.offset_ms, sample.rtt_ms) == (5000.0, 100.0)


def test_median_ignores_one_slow_round_trip():
    local = iter([0, 10, 100, 110, 200, 2200])  # last trip took 2 s
    servers = iter([505, 605, 1700])
    sample = measure_offset(lambda: next(servers), samples=3, local_ms=lambda: next(local))
    assert sample.offset_ms == 500.0


def test_venue_clock_against_a_real_server_ahead_by_three_seconds(venue):
    venue.on("GET", "/api/v3/time", lambda _r: Reply(body={"serverTime": int(time.time() * 1000) + 3000}))
    exchange = BinanceSpot(base_url=venue.url)
    assert abs(exchange.now_ms() - (time.time() * 1000 + 3000)) < 300
    assert len(venue.calls("GET", "/api/v3/time")) == 3
    exchange.now_ms()
    assert len(venue.calls("GET", "/api/v3/time")) == 3  # not re-measured while fresh


def test_stale_offset_is_remeasured():
    counter = itertools.count()
    clock = VenueClock(lambda: next(counter) * 0 + 1_000, max_age_s=0.0, local_ms=lambda: 0.0)
    clock.now_ms()
    clock.now_ms()
    assert next(counter) == 6  # two syncs of three samples each


def test_a_clock_adopts_another_clocks_measure_of_the_same_venue_but_never_an_unmeasured_one():
    fetched: list[int] = []
    measured = VenueClock(lambda: fetched.append(1) or 5_000.0, samples=1, local_ms=lambda: 1_000.0)
    measured.sync()
    fresh = VenueClock(lambda: fetched.append(1) or 0.0, samples=1, local_ms=lambda: 1_000.0)
    fresh.adopt(VenueClock(lambda: 0.0))  # nothing measured there: nothing taken
    assert fresh.offset_ms is None
    fresh.adopt(measured)
    assert fresh.offset_ms == 4_000.0 and fresh.now_ms() == 5_000 and len(fetched) == 1  # no request of its own
