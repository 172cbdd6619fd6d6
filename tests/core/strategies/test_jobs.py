"""The trusted jobs that run inside the sandbox, exercised in-process on real candles."""

from __future__ import annotations

import pandas as pd
import pytest
import ta

from core.strategies import StrategyError, StrategyRuntime
from core.strategies.contract import Position
from core.strategies.jobs import candles_frame, describe, dry_run, evaluate_last
from core.strategies.loader import load_strategy_class
from core.strategies.templates import get_template


@pytest.fixture(scope="module")
def sma_cls():
    return load_strategy_class(get_template("sma_cross").code)


def test_candles_frame_refuses_malformed_rows(candle_rows):
    assert list(candles_frame(candle_rows[:3])["open_time"]) == [r[0] for r in candle_rows[:3]]
    for rows, fragment in (
        ([], "non-empty"),
        ([[1, 2, 3]], "each candle"),
        ([[1, "a", 1, 1, 1, 1]], "numbers"),
        ([[1, float("nan"), 1, 1, 1, 1]], "finite"),
        ([candle_rows[1], candle_rows[0]], "sorted"),
        ("rows", "non-empty"),
    ):
        with pytest.raises(ValueError, match=fragment):
            candles_frame(rows)
    assert candles_frame([[1, "2.5", "3", "1", "2", "10"]])["close"].iloc[0] == 2.0


def test_describe_resolves_params(sma_cls):
    result = describe(sma_cls, {"params": {"fast": "5"}})
    assert result == {
        "class_name": "SmaCross",
        "params": {"fast": 10, "slow": 30},
        "resolved_params": {"fast": 5, "slow": 30},
    }


def test_dry_run_counts_exactly_the_sma_crosses(sma_cls, candle_rows):
    close = pd.Series([row[4] for row in candle_rows])
    fast, slow = ta.trend.sma_indicator(close, window=10), ta.trend.sma_indicator(close, window=30)
    expected = int(((fast.shift(1) <= slow.shift(1)) & (fast > slow)).sum())
    result = dry_run(sma_cls, {"candles": candle_rows})
    assert expected > 0
    assert result == {"candles": len(candle_rows), "long_entries": expected, "short_entries": 0}


def test_evaluate_last_matches_the_runtime(sma_cls, candle_rows):
    close = pd.Series([row[4] for row in candle_rows])
    fast, slow = ta.trend.sma_indicator(close, window=10), ta.trend.sma_indicator(close, window=30)
    cross = [i for i in range(31, len(candle_rows)) if fast[i - 1] <= slow[i - 1] and fast[i] > slow[i]][0]
    window = candle_rows[: cross + 1]
    result = evaluate_last(sma_cls, {"candles": window})
    assert result["enter"] == "long" and result["size_fraction"] == 1.0
    assert result["candle_time"] == window[-1][0]
    frame = candles_frame(window)
    decision = StrategyRuntime(sma_cls, frame).decide_at(len(frame) - 1, Position())
    assert (decision.enter, decision.exit) == (result["enter"], result["exit"])


def test_evaluate_last_with_an_open_position_can_exit(sma_cls, candle_rows):
    close = pd.Series([row[4] for row in candle_rows])
    fast, slow = ta.trend.sma_indicator(close, window=10), ta.trend.sma_indicator(close, window=30)
    cross_down = [i for i in range(31, len(candle_rows)) if fast[i - 1] >= slow[i - 1] and fast[i] < slow[i]][0]
    payload = {"candles": candle_rows[: cross_down + 1], "position": {"side": "long", "size": 0.1, "entry_price": 4000}}
    assert evaluate_last(sma_cls, payload)["exit"] is True
    with pytest.raises(ValueError, match="position"):
        evaluate_last(sma_cls, {"candles": candle_rows[:50], "position": {"side": "sideways"}})


def test_strategy_errors_carry_the_candle_time(candle_rows):
    code = get_template("sma_cross").code.replace(
        "return crossed_above(self.fast, self.slow)", "return 1 / (len(self.data.close) - 40) > 0"
    )
    with pytest.raises(StrategyError) as info:
        dry_run(load_strategy_class(code), {"candles": candle_rows[:100]})
    assert info.value.candle_time == candle_rows[39][0]
    assert "ZeroDivisionError" in str(info.value)
