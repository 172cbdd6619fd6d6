"""The strategy contract and its runtime: views that end at the current candle, params, helpers, answers
validated per candle (the vectoriser: test_vectorizer.py)."""

import numpy as np
import pytest

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
from core.strategies.loader import load_strategy_class
from tests.backtest_support import candles_from_closes


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
    assert resolve_params(P, {"fast": "12", "ratio": "1", "on": "no"}) == {
        "fast": 12,
        "ratio": 1.0,
        "on": False,
        "name": "x",
    }
    for bad in (
        {"fast": "abc"},
        {"fast": 1.5},
        {"fast": True},
        {"ratio": "nan"},
        {"on": "maybe"},
        {"name": 3},
        {"slow": 3},
    ):
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
