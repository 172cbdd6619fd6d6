"""The rest of a run over arrays (core/backtest/fast_path.py) against the per-candle loop: bit-identical
trades, equity and metrics, for long and short entries, an exit and a re-entry on the same candle,
a fraction of the balance, slippage, and signals that fire on most candles."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.backtest.engine import BacktestSettings, run_backtest
from core.strategies import Strategy, crossed_above, crossed_below
from tests.core.backtest.test_engine import random_walk


def mean(c, w):
    return c.rolling(w).mean()


class Flip(Strategy):
    """Long on a cross up, short on a cross down; either cross exits, so an exit and the next entry
    share their candle."""

    params = {"fast": 3, "slow": 8, "size": 0.5}

    def init(self):
        self.fast = self.indicator(mean, self.data.close, self.params["fast"])
        self.slow = self.indicator(mean, self.data.close, self.params["slow"])

    def should_long(self):
        return crossed_above(self.fast, self.slow)

    def should_short(self):
        return crossed_below(self.fast, self.slow)

    def should_exit(self):
        return crossed_above(self.fast, self.slow) | crossed_below(self.fast, self.slow)

    def position_size(self):
        return self.params["size"]


class Levels(Strategy):
    """Signals on levels, not crosses: true on most candles, entries and exits often together."""

    params = {"fast": 3, "slow": 8, "size": 1.0}

    def init(self):
        self.fast = self.indicator(mean, self.data.close, self.params["fast"])
        self.slow = self.indicator(mean, self.data.close, self.params["slow"])

    def should_long(self):
        return self.data.close[-1] > self.fast[-1]

    def should_short(self):
        return self.data.close[-1] < self.slow[-1]

    def should_exit(self):
        return self.data.close[-1] < self.fast[-1]

    def position_size(self):
        return self.params["size"]


def trade_rows(result):
    return [tuple(t.as_dict().values()) for t in result.trades]


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    strategy=st.sampled_from([Flip, Levels]),
    fast=st.integers(2, 6),
    slow=st.integers(7, 20),
    size=st.sampled_from([1.0, 0.5, 0.3]),
    slippage=st.sampled_from([0.0, 5.0]),
)
def test_the_rest_over_arrays_equals_the_loop(seed, strategy, fast, slow, size, slippage):
    candles = random_walk(600, seed)
    params = {"fast": fast, "slow": slow, "size": size}
    arrays = run_backtest(strategy, candles, params, BacktestSettings(slippage_bps=slippage))
    loop = run_backtest(strategy, candles, params, BacktestSettings(slippage_bps=slippage, vectorize=False))
    assert set(arrays.evaluation.values()) == {"vectorized"}
    assert trade_rows(arrays) == trade_rows(loop) and len(arrays.trades) > 3
    assert np.array_equal(arrays.equity, loop.equity)
    assert arrays.metrics == loop.metrics
    assert arrays.daily_equity is not None and arrays.daily_equity.equals(loop.daily_equity)


def test_short_and_long_trades_and_same_candle_reentry_happen():
    result = run_backtest(Flip, random_walk(2000, 5), {"fast": 3, "slow": 8, "size": 0.5})
    sides = {t.side for t in result.trades}
    assert sides == {"long", "short"}
    reentries = sum(a.exit_index == b.entry_index for a, b in zip(result.trades, result.trades[1:], strict=False))
    assert reentries > 10
    assert result.trades[-1].exit_reason in ("signal", "end_of_data")
