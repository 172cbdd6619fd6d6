import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.strategies import (
    ParamError,
    Position,
    Strategy,
    StrategyError,
    StrategyRuntime,
    crossed_above,
    crossed_below,
    resolve_params,
)
from core.strategies.contract import is_pure_function
from core.strategies.loader import load_strategy_class


def candles_from_closes(closes) -> pd.DataFrame:
    closes = np.asarray(closes, dtype="float64")
    opens = np.concatenate([[closes[0]], closes[:-1]])
    return pd.DataFrame(
        {
            "open_time": 1_700_000_000_000 + 60_000 * np.arange(len(closes)),
            "open": opens,
            "high": np.maximum(opens, closes) + 1,
            "low": np.minimum(opens, closes) - 1,
            "close": closes,
            "volume": np.ones(len(closes)),
        }
    )


class Recorder(Strategy):
    params = {"window": 3}

    def init(self):
        self.avg = self.indicator(lambda s, w: s.rolling(w).mean(), self.data.close, self.params["window"])
        self.raw_copy = self.data.close.to_numpy() * 2  # a plain array kept by the strategy
        self.seen = []

    def should_long(self):
        self.seen.append((len(self.data.close), float(self.data.close[-1]), len(self.avg), len(self.raw_copy)))
        return False


def test_views_end_at_the_current_candle_for_data_indicators_and_plain_arrays():
    rt = StrategyRuntime(Recorder, candles_from_closes([10, 11, 12, 13, 14]))
    for i in range(5):
        rt.call("should_long", i)
    assert rt.strategy.seen == [(i + 1, 10.0 + i, i + 1, i + 1) for i in range(5)]
    assert rt.strategy.raw_copy[-1] == 28.0  # the view stays at the last candle asked about
    rt.call("should_long", 0)
    assert rt.strategy.raw_copy[-1] == 20.0 and len(rt.strategy.avg) == 1


def test_params_defaults_overrides_and_types():
    class P(Strategy):
        params = {"fast": 10, "ratio": 0.5, "on": True, "name": "x"}

    assert resolve_params(P, None) == {"fast": 10, "ratio": 0.5, "on": True, "name": "x"}
    assert resolve_params(P, {"fast": "12", "ratio": "1", "on": "no"}) == {"fast": 12, "ratio": 1.0, "on": False, "name": "x"}
    for bad in ({"fast": "abc"}, {"fast": 1.5}, {"fast": True}, {"ratio": "nan"}, {"on": "maybe"}, {"name": 3}, {"slow": 3}):
        with pytest.raises(ParamError):
            resolve_params(P, bad)
    with pytest.raises(ParamError, match="unknown parameter 'slow'"):
        resolve_params(P, {"slow": 3})


def test_crossed_helpers_on_views_and_numbers():
    assert crossed_above(np.array([1.0, 3.0]), np.array([2.0, 2.0]))
    assert crossed_above(np.array([2.0, 3.0]), 2.0)  # touch then cross counts
    assert not crossed_above(np.array([3.0, 4.0]), 2.0)
    assert not crossed_above(np.array([3.0]), 2.0)  # one candle: no previous value
    assert not crossed_above(np.array([np.nan, 3.0]), 2.0)
    assert crossed_below(np.array([3.0, 1.0]), np.array([2.0, 2.0]))
    assert not crossed_below(np.array([1.0, 0.0]), 2.0)


class Sized(Strategy):
    params = {"size": 0.5, "sl": 90.0, "answer": 1}

    def should_long(self):
        return self.params["answer"] == 1 if self.params["answer"] != 2 else 1.5

    def position_size(self):
        return float("nan") if self.params["size"] == -1 else self.params["size"]

    def stop_loss(self):
        return self.params["sl"]


@pytest.mark.parametrize(
    ("params", "method", "words"),
    [
        ({"size": -1.0}, "position_size", "fraction"),  # NaN
        ({"size": 0.0}, "position_size", "fraction"),
        ({"size": 1.5}, "position_size", "fraction"),
        ({"sl": -5.0}, "stop_loss", "positive price"),
        ({"answer": 2}, "should_long", "True or False"),
    ],
)
def test_nonsense_answers_name_the_method_and_candle(params, method, words):
    rt = StrategyRuntime(Sized, candles_from_closes([100, 101, 102]), params)
    with pytest.raises(StrategyError) as info:
        rt.call(method, 2)
    assert info.value.method == method
    assert info.value.candle_time_ms == 1_700_000_000_000 + 120_000
    assert words in str(info.value)
    assert info.value.line is not None  # the method's line in the strategy code


def test_exception_in_user_code_carries_its_line():
    code = (
        "from core.strategies import Strategy\n"
        "\n"
        "class Boom(Strategy):\n"
        "    def should_long(self):\n"
        "        if self.data.close[-1] > 101:\n"
        "            return 1 / 0\n"
        "        return False\n"
    )
    rt = StrategyRuntime(load_strategy_class(code), candles_from_closes([100, 101, 102]))
    assert rt.call("should_long", 1) is False
    with pytest.raises(StrategyError) as info:
        rt.call("should_long", 2)
    assert (info.value.method, info.value.line, info.value.kind) == ("should_long", 6, "exception")
    assert "ZeroDivisionError" in info.value.message


def test_init_failure_and_bad_indicator_are_reported():
    class BadIndicator(Strategy):
        def init(self):
            self.x = self.indicator(lambda c: c.to_numpy()[:-1], self.data.close)

    with pytest.raises(StrategyError, match="one value per candle"):
        StrategyRuntime(BadIndicator, candles_from_closes([1, 2, 3]))


def test_decide_at_gives_the_live_decision():
    class Flip(Strategy):
        def should_long(self):
            return self.data.close[-1] > self.data.open[-1]

        def should_exit(self):
            return self.position.is_long and self.data.close[-1] < self.data.open[-1]

        def take_profit(self):
            return float(self.data.close[-1]) * 1.1

    rt = StrategyRuntime(Flip, candles_from_closes([10, 11, 10]))
    flat = rt.decide_at(1, Position())
    assert (flat.enter, flat.exit, flat.size_fraction) == ("long", False, 1.0)
    assert flat.take_profit == pytest.approx(12.1)
    held = rt.decide_at(2, Position("long", 1.0, 11.0))
    assert (held.exit, held.enter) == (True, None)


# ----------------------------------------------------------------- symbolic evaluation


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
