from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.data import data_dir
from core.candles.aggregate import OutOfOrder, SymbolAggregator, aggregate_series
from core.candles.candle import MINUTE_MS, TIMEFRAME_MS, ClosedCandle
from core.exchanges.spot.registry import make_exchange
from core.infra.config import TIMEFRAMES

DAY_MS = 86_400_000


def minute(open_time: int, o, h, low, c, v, symbol="BTCUSDT") -> ClosedCandle:
    return ClosedCandle(
        "sim",
        symbol,
        "1m",
        open_time,
        Decimal(str(o)),
        Decimal(str(h)),
        Decimal(str(low)),
        Decimal(str(c)),
        Decimal(str(v)),
    )


def by_timeframe(candles: list[ClosedCandle], timeframe: str) -> list[ClosedCandle]:
    return [c for c in candles if c.timeframe == timeframe]


def test_higher_timeframes_equal_the_venues_own_klines(sim):
    """Four hours of the simulator's 1m klines, aggregated by us, equal its 3m..4h klines exactly."""
    venue = make_exchange("sim", api_key="", api_secret="", base_url=sim.url)
    start = 1_735_689_600_000  # 2025-01-01 00:00 UTC: a 4h boundary
    end = start + 8 * 3_600_000 - MINUTE_MS
    rows = venue.klines("BTCUSDT", "1m", start_ms=start, end_ms=end, limit=1000)
    assert len(rows) == 480
    minutes = [
        ClosedCandle("sim", "BTCUSDT", "1m", k.open_time_ms, k.open, k.high, k.low, k.close, k.volume) for k in rows
    ]
    ours = aggregate_series(minutes, TIMEFRAMES)
    for timeframe in TIMEFRAMES[1:]:
        theirs = venue.klines("BTCUSDT", timeframe, start_ms=start, end_ms=end, limit=1000)
        mine = by_timeframe(ours, timeframe)
        assert len(mine) == 8 * 3_600_000 // TIMEFRAME_MS[timeframe]
        assert [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in mine] == [
            (k.open_time_ms, k.open, k.high, k.low, k.close, k.volume) for k in theirs
        ], timeframe


def test_real_btc_minutes_aggregate_like_pandas_resample():
    """Three days of real Binance 1m candles: our 1h/4h candles match an independent pandas resample."""
    frame = pd.read_csv(data_dir() / "BTCUSDT-1m.csv", nrows=3 * 1440, dtype=str)
    minutes = [minute(int(r.open_time), r.open, r.high, r.low, r.close, r.volume) for r in frame.itertuples()]
    ours = aggregate_series(minutes, TIMEFRAMES)
    numeric = frame.astype({"open_time": "int64"}).set_index(
        pd.to_datetime(frame["open_time"].astype("int64"), unit="ms", utc=True)
    )
    for column in ("open", "high", "low", "close", "volume"):
        numeric[column] = numeric[column].map(Decimal)
    for timeframe, rule in (("15m", "15min"), ("1h", "1h"), ("4h", "4h")):
        resampled = numeric.resample(rule, origin="epoch").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        )
        mine = by_timeframe(ours, timeframe)
        assert len(mine) == len(resampled)
        for candle, (when, row) in zip(mine, resampled.iterrows(), strict=True):
            assert candle.open_time == int(when.timestamp() * 1000)
            assert (candle.open, candle.high, candle.low, candle.close) == (row.open, row.high, row.low, row.close)
            assert candle.volume == row.volume


@st.composite
def minute_series(draw):
    start = draw(st.integers(0, 50)) * MINUTE_MS + 1_735_689_600_000
    steps = draw(st.lists(st.sampled_from([1, 1, 1, 1, 2, 7, 61]), min_size=1, max_size=400))
    times, t = [], start
    for step in steps:
        times.append(t)
        t += step * MINUTE_MS
    candles = []
    for open_time in times:
        o, c = draw(st.integers(1, 1000)), draw(st.integers(1, 1000))
        high, low = max(o, c) + draw(st.integers(0, 50)), min(o, c) - min(draw(st.integers(0, 50)), min(o, c) - 1)
        candles.append(minute(open_time, o, high, low, c, draw(st.integers(0, 100))))
    return candles


@settings(max_examples=60, deadline=None)
@given(minute_series())
def test_every_closed_higher_candle_is_the_aggregate_of_its_minutes(minutes):
    """With gaps anywhere, each emitted candle covers exactly the minutes of its UTC bucket."""
    out = aggregate_series(minutes, TIMEFRAMES)
    last_open = minutes[-1].open_time
    for timeframe in TIMEFRAMES[1:]:
        span = TIMEFRAME_MS[timeframe]
        groups: dict[int, list[ClosedCandle]] = {}
        for m in minutes:
            groups.setdefault(m.open_time - m.open_time % span, []).append(m)
        emitted = by_timeframe(out, timeframe)
        # Every bucket is emitted except the one still open (the last minute's, unless that minute ends it).
        still_open = last_open - last_open % span if (last_open + MINUTE_MS) % span else None
        assert [c.open_time for c in emitted] == sorted(b for b in groups if b != still_open)
        for candle in emitted:
            group = groups[candle.open_time]
            assert candle.open == group[0].open and candle.close == group[-1].close
            assert candle.high == max(m.high for m in group) and candle.low == min(m.low for m in group)
            assert candle.volume == sum(m.volume for m in group)


def test_duplicate_and_back_in_time_minutes_are_refused_without_changing_state():
    aggregator = SymbolAggregator("sim", "BTCUSDT", TIMEFRAMES)
    t0 = 1_735_689_600_000
    aggregator.add(minute(t0, 10, 11, 9, 10, 1))
    aggregator.add(minute(t0 + MINUTE_MS, 10, 12, 9, 11, 1))
    with pytest.raises(OutOfOrder, match="duplicate"):
        aggregator.add(minute(t0 + MINUTE_MS, 99, 99, 99, 99, 1))
    with pytest.raises(OutOfOrder, match="back in time"):
        aggregator.add(minute(t0, 99, 99, 99, 99, 1))
    closed = aggregator.add(minute(t0 + 2 * MINUTE_MS, 11, 13, 8, 12, 1))
    three = [c for c in closed if c.timeframe == "3m"]
    assert three == [
        ClosedCandle("sim", "BTCUSDT", "3m", t0, Decimal(10), Decimal(13), Decimal(8), Decimal(12), Decimal(3))
    ]


def test_refuses_a_candle_that_is_not_a_whole_minute():
    aggregator = SymbolAggregator("sim", "BTCUSDT", TIMEFRAMES)
    with pytest.raises(ValueError, match="minute boundary"):
        aggregator.add(minute(1_735_689_600_000 + 5, 1, 1, 1, 1, 1))
