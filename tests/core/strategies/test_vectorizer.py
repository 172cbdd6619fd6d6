"""The bytecode vectoriser: pure decision methods detected from their bytecode, and their answer over
whole arrays equal to the per-candle calls."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.strategies import Strategy, StrategyError, StrategyRuntime, crossed_above, crossed_below
from core.strategies.loader import load_strategy_class
from core.strategies.vectorizer import is_pure_function
from tests.backtest_support import candles_from_closes


class Pure(Strategy):
    params = {"fast": 3, "slow": 7, "level": 0.2}

    def init(self):
        self.fast = self.indicator(lambda c, w: c.rolling(w).mean(), self.data.close, self.params["fast"])
        self.slow = self.indicator(lambda c, w: c.rolling(w).mean(), self.data.close, self.params["slow"])

    def should_long(self):
        return crossed_above(self.fast, self.slow) & (self.data.close[-3] > self.data.open[-1] - self.params["level"])

    def should_short(self):
        return (abs(self.fast[-1] - self.slow[-1]) / self.slow[-2] > 0.01) | (self.data.volume[0] > 5)

    def should_exit(self):
        return crossed_below(self.fast, self.slow) ^ (self.data.close[-1] % 2 > 1.5)


def test_pure_methods_are_detected_and_impure_ones_are_not():
    class Impure(Strategy):
        counter = 0

        def should_long(self):
            return random.random() > 0.5

        def should_short(self):
            return self.position.is_flat

        def should_exit(self):
            return self.data.close[-1] > np.mean(self.data.close[-5:])

    assert all(is_pure_function(getattr(Pure, m)) for m in ("should_long", "should_short", "should_exit"))
    rt = StrategyRuntime(Impure, candles_from_closes(range(1, 20)))
    assert "globals" in rt.symbolic_signal("should_long")
    assert "position" in rt.symbolic_signal("should_short")
    assert isinstance(rt.symbolic_signal("should_exit"), str)


@settings(max_examples=40, deadline=None)
@given(
    closes=st.lists(st.floats(1, 100, allow_nan=False), min_size=1, max_size=60),
    fast=st.integers(1, 5),
    slow=st.integers(1, 12),
)
def test_symbolic_answers_equal_per_candle_calls(closes, fast, slow):
    rt = StrategyRuntime(Pure, candles_from_closes(closes), {"fast": fast, "slow": slow})
    for method in ("should_long", "should_short", "should_exit"):
        outcome = rt.symbolic_signal(method)
        if isinstance(outcome, str):  # only a series shorter than the look-back runs per candle
            assert len(closes) < 3 and ("lag" in outcome or "beyond" in outcome), outcome
            continue
        values, valid_from = outcome
        for i in range(len(closes)):
            if i < valid_from:
                with pytest.raises(StrategyError):  # the per-candle call cannot look that far back either
                    rt.call(method, i)
            else:
                assert rt.call(method, i) == values[i], (method, i)


def test_restricted_loaded_strategy_is_vectorized():
    code = (
        "import ta\n"
        "from core.strategies import Strategy, crossed_above\n"
        "class S(Strategy):\n"
        "    params = {'w': 3}\n"
        "    def init(self):\n"
        "        self.m = self.indicator(ta.trend.sma_indicator, self.data.close, window=self.params['w'])\n"
        "    def should_long(self):\n"
        "        return crossed_above(self.data.close, self.m) and True\n"
        "    def should_exit(self):\n"
        "        return crossed_above(self.m, self.data.close)\n"
    )
    rt = StrategyRuntime(load_strategy_class(code), candles_from_closes([3, 1, 2, 5, 4, 1, 6]))
    assert isinstance(rt.symbolic_signal("should_long"), str)  # `and` needs a Python bool: per candle
    values, valid_from = rt.symbolic_signal("should_exit")
    assert valid_from == 0
    assert values.tolist() == [rt.call("should_exit", i) for i in range(7)]
