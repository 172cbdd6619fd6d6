"""Ordinary Python in strategies (issue 21): what the restricted compiler now allows, what it still refuses.

In-process (the restricted loader and its guards, no sandbox child): the escape corpora prove the
sandbox as a whole; these pin the compile policy and the plain `self.name` fast path.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from bench.backtest import BREAKOUT_STREAK_PATH
from core.backtest.engine import BacktestSettings, run_backtest
from core.strategies.loader import StrategyAccessError, load_strategy_class
from core.strategies.validation import StrategyCodeError, validate_strategy_code
from tests.core.strategies.conftest import read_candle_rows

ORDINARY = """
import collections
import itertools
import math
import statistics
from dataclasses import dataclass

import numpy as np

from core.strategies import Strategy


@dataclass
class Tally:
    ups: int = 0
    downs: int = 0


class Ordinary(Strategy):
    params = {"window": 5}

    def init(self):
        self.tally = Tally()
        self.counts = {"long": 0}
        self.recent = collections.deque(maxlen=self.params["window"])
        self.streak = 0
        self.labels = []

    def should_long(self):
        close = float(self.data.close[-1])
        self.recent.append(close)
        if len(self.recent) < self.params["window"]:
            return False
        rising = [b > a for a, b in itertools.pairwise(self.recent)]
        self.streak += 1 if all(rising) else -self.streak
        self.tally.ups += sum(rising)
        self.counts["long"] += 1
        self.labels.append(f"{close:.2f} mean={statistics.mean(self.recent):.2f}")
        return self.streak >= 2 and math.isfinite(float(np.mean(list(self.recent))))

    def should_exit(self):
        return len(self.recent) > 0 and self.data.close[-1] < min(self.recent)
"""


def candles(limit: int = 400) -> pd.DataFrame:
    frame = pd.DataFrame(read_candle_rows(limit=limit), columns=["open_time", "open", "high", "low", "close", "volume"])
    return frame.astype({"open_time": "int64"})


def error_of(code: str) -> dict:
    report = validate_strategy_code(code)
    assert not report.ok
    return report.errors[0]


def test_ordinary_python_compiles_and_backtests():
    cls = load_strategy_class(ORDINARY)
    result = run_backtest(cls, candles(), {}, BacktestSettings())
    assert result.status == "ok", result.error
    assert len(result.trades) > 0
    assert result.evaluation["should_long"].startswith("per candle")


def test_the_issue_example_compiles_and_backtests():
    code = BREAKOUT_STREAK_PATH.read_text()
    assert validate_strategy_code(code).ok
    result = run_backtest(load_strategy_class(code), candles(600), {}, BacktestSettings())
    assert result.status == "ok", result.error
    assert len(result.trades) > 0 and {t.exit_reason for t in result.trades} >= {"signal"}
    # should_long keeps a streak; should_exit reads no state and stays vectorized
    assert result.evaluation["should_exit"] == "vectorized"


def test_augmented_assignment_reads_and_writes_through_the_guards():
    code = textwrap.dedent("""
        import numpy
        from core.strategies import Strategy

        class Mine(Strategy):
            def init(self):
                self.values = numpy.zeros(3)
                self.values.base += 1
        """)
    result = run_backtest(load_strategy_class(code), candles(50), {}, BacktestSettings())
    assert result.status == "failed" and "array attribute 'base'" in result.error["message"]
    assert result.error["method"] == "init" and result.error["line"] == 8


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("x = self.__class__", "'__class__'"),
        ("import os", "import of 'os' is not allowed"),
        ("import importlib", "import of 'importlib' is not allowed"),
        ("g = (i for i in [1])\n        f = g.gi_frame", "gi_frame"),
        ("t = '{0.data}'.format(self)", "'format' is not allowed"),
        ("from itertools import _tee", "'_tee'"),
    ],
)
def test_what_could_escape_is_refused_with_the_line_and_a_reason(body, fragment):
    code = f"from core.strategies import Strategy\n\nclass Mine(Strategy):\n    def init(self):\n        {body}\n"
    error = error_of(code)
    assert error["line"] in (5, 6) and fragment in error["message"]


def test_a_module_reached_through_an_allowed_one_is_refused_at_run_time():
    code = "from dataclasses import sys\nfrom core.strategies import Strategy\n\nclass Mine(Strategy):\n    pass\n"
    with pytest.raises(StrategyAccessError, match="'dataclasses.sys' is not available"):
        load_strategy_class(code)


def test_a_method_with_plain_self_access_refuses_a_foreign_self():
    code = textwrap.dedent("""
        import numpy
        from core.strategies import Strategy

        class Mine(Strategy):
            def peek(self):
                return self.testing

            def init(self):
                self.found = Mine.peek(numpy)
        """)
    cls = load_strategy_class(code)
    result = run_backtest(cls, candles(50), {}, BacktestSettings())
    assert result.status == "failed" and "only be called on the strategy itself" in result.error["message"]


def test_a_method_that_rebinds_self_keeps_every_guard():
    code = textwrap.dedent("""
        import numpy
        from core.strategies import Strategy

        class Mine(Strategy):
            def init(self):
                self = numpy
                self.found = self.testing
        """)
    cls = load_strategy_class(code)
    result = run_backtest(cls, candles(50), {}, BacktestSettings())
    assert result.status == "failed" and "numpy.testing" in result.error["message"]


def test_state_read_by_a_vectorized_method_forces_the_per_candle_rerun():
    code = textwrap.dedent("""
        from core.strategies import Strategy

        class Mine(Strategy):
            def init(self):
                self.level = 0.0

            def should_long(self):
                self.level = self.data.close[-1] * 2
                return False

            def should_short(self):
                return self.data.close[-1] > self.level
        """)
    result = run_backtest(load_strategy_class(code), candles(50), {}, BacktestSettings())
    assert result.status == "ok"
    assert result.evaluation["should_short"] == "per candle: strategy writes state"
    assert result.trades == [] or result.trades[0].side == "short"
    assert np.isfinite(result.final_equity)


def test_a_refused_code_error_names_its_line():
    with pytest.raises(StrategyCodeError) as info:
        load_strategy_class("from core.strategies import Strategy\nclass A(Strategy):\n    x = 1\nimport os\n")
    assert info.value.line == 4
