"""Indicator results shared by a grid's runs (core/strategies/indicator_cache.py): a run with the cache
gives what it gives alone; equal calls are answered once; nothing a run does to its copy reaches the next."""

import numpy as np
import pandas as pd
import ta
from hypothesis import given, settings
from hypothesis import strategies as st

from core.backtest.engine import run_backtest
from core.strategies import Strategy, crossed_above, crossed_below
from core.strategies.indicator_cache import IndicatorCache
from tests.core.backtest.test_engine import random_walk


def band(high, low, scale=1.0):
    return (high - low) * scale


class Layered(Strategy):
    """Indicators from candles, of another indicator, with keyword arguments, and from a closure."""

    params = {"fast": 5, "slow": 20, "smooth": 3, "scale": 1.0}

    def init(self):
        self.fast = self.indicator(ta.trend.sma_indicator, self.data.close, window=self.params["fast"])
        self.slow = self.indicator(ta.trend.sma_indicator, self.data.close, window=self.params["slow"])
        self.smooth = self.indicator(ta.trend.sma_indicator, pd.Series(self.fast), window=self.params["smooth"])
        self.band = self.indicator(band, self.data.high, self.data.low, scale=self.params["scale"])
        self.scaled = self.indicator(lambda c: c * self.params["scale"], self.data.close)  # a closure: never kept

    def should_long(self):
        return crossed_above(self.smooth, self.slow)

    def should_short(self):
        return self.band[-1] > self.scaled[-1] * 0.02

    def should_exit(self):
        return crossed_below(self.smooth, self.slow)


def outcome(result):
    return [tuple(t.as_dict().values()) for t in result.trades], result.equity.tolist(), result.metrics


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    combos=st.lists(
        st.tuples(st.integers(2, 6), st.integers(8, 20), st.integers(1, 4), st.sampled_from([0.5, 1.0])),
        min_size=2,
        max_size=4,
    ),
)
def test_runs_sharing_a_cache_equal_independent_runs(seed, combos):
    candles = random_walk(400, seed)
    cache = IndicatorCache()
    keys = []  # what each run asks: the close's SMA of two windows, the smoothed fast one, the band
    for fast, slow, smooth, scale in combos:
        keys += [("close", fast), ("close", slow), ("smooth", fast, smooth), ("band", scale)]
        params = {"fast": fast, "slow": slow, "smooth": smooth, "scale": scale}
        shared = run_backtest(Layered, candles, params, indicators=cache)
        alone = run_backtest(Layered, candles, params)
        assert shared.status == alone.status == "ok"
        assert outcome(shared) == outcome(alone)
    assert cache.hits == len(keys) - len(set(keys))  # every call asked before, and only those


def test_equal_calls_are_computed_once_and_handed_out_as_copies():
    cache = IndicatorCache()
    close = random_walk(300, 1)["close"]
    calls = []

    def compute():
        calls.append(1)
        return ta.trend.sma_indicator(close, window=5).to_numpy().copy()  # writable, as a user function may give

    first = cache.compute(ta.trend.sma_indicator, (close,), {"window": 5}, compute)
    first[:] = -1.0
    again = cache.compute(ta.trend.sma_indicator, (close.copy(),), {"window": 5}, compute)  # equal, not the same
    assert len(calls) == 1 and cache.hits == 1
    assert np.array_equal(again, ta.trend.sma_indicator(close, window=5).to_numpy(), equal_nan=True)
    cache.compute(ta.trend.sma_indicator, (close,), {"window": 6}, compute)
    cache.compute(ta.trend.sma_indicator, (close * -0.0 + 0.0,), {"window": 5}, compute)  # other values
    assert len(calls) == 3


def test_what_cannot_be_keyed_is_computed_every_time():
    cache = IndicatorCache()
    values = np.arange(50, dtype="float64")
    scale = 2.0
    closure = lambda v: v * scale  # noqa: E731 - a closure on purpose
    for func, args in ((closure, (values,)), (np.cumsum, ([1.0, 2.0],)), (np.cumsum, (values.reshape(5, 10),))):
        for _ in range(2):
            cache.compute(func, args, {}, lambda f=func, a=args: np.asarray(f(*a), dtype="float64"))
    assert cache.hits == 0 and cache.misses == 6
    assert cache.compute(np.negative, (-0.0 * values,), {}, lambda: -(-0.0 * values)).tolist() == [0.0] * 50
    assert cache.compute(np.negative, (0.0 * values,), {}, lambda: np.full(50, 7.0))[0] == 7.0  # -0.0 is not 0.0


def test_a_full_cache_keeps_nothing_more():
    cache = IndicatorCache(max_bytes=8 * 100)
    values = np.arange(100, dtype="float64")
    for _ in range(2):
        cache.compute(np.cumsum, (values,), {}, lambda: np.cumsum(values))
    assert cache.hits == 0 and cache.bytes <= 8 * 100
