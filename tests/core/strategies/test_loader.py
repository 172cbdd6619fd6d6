"""Restricted loading and the run-time guards (in-process, with trusted or harmless code)."""

from __future__ import annotations

import math
import statistics

import numpy
import pytest

from core.strategies import Strategy
from core.strategies.loader import (
    StrategyAccessError,
    StrategyImportError,
    guarded_getattr,
    guarded_import,
    guarded_write,
    load_strategy_class,
)
from core.strategies.templates import get_template
from core.strategies.validation import StrategyCodeError


def test_template_loads_as_a_strategy_subclass():
    cls = load_strategy_class(get_template("macd_trend").code)
    assert issubclass(cls, Strategy) and cls.__name__ == "MacdTrend"
    assert cls.params["trend"] == 200


def test_refused_code_raises_with_lines():
    with pytest.raises(StrategyCodeError) as info:
        load_strategy_class("import os\nfrom core.strategies import Strategy\nclass A(Strategy):\n    pass\n")
    assert info.value.line == 1
    assert str(info.value).startswith("line 1: import of 'os'")


def test_module_body_errors_keep_the_user_line():
    code = "from core.strategies import Strategy\nLIMIT = 1 / 0\nclass A(Strategy):\n    pass\n"
    with pytest.raises(ZeroDivisionError) as info:
        load_strategy_class(code)
    frames = [tb for tb in info.traceback if str(tb.path) == "<strategy>"]
    assert frames and frames[-1].lineno + 1 == 2


def test_getattr_guard_refuses_private_file_and_module_walks():
    for obj, name in ((statistics, "sys"), (numpy, "load"), (numpy, "lib"), (numpy, "ctypeslib"), ("x", "format"),
                      (int, "mro"), (Strategy, "__init__"), (numpy.zeros(2), "tofile")):
        with pytest.raises(StrategyAccessError):
            guarded_getattr(obj, name)
    assert guarded_getattr(math, "sqrt") is math.sqrt
    assert guarded_getattr(numpy, "random") is numpy.random


def test_write_guard_protects_modules_and_classes():
    for target in (math, Strategy, math.sqrt, len):
        with pytest.raises(StrategyAccessError):
            guarded_write(target)
    values = {"a": 1}
    assert guarded_write(values) is values


def test_import_guard_follows_the_allow_list():
    assert guarded_import("math") is math
    contract = guarded_import("core.strategies", fromlist=("Strategy",))
    assert contract.Strategy is Strategy
    for name, fromlist in (("os", ()), ("numpy.lib", ()), ("core.strategies", ()), ("core.strategies", ("StrategyRuntime",)),
                           ("numpy", ("load",)), ("core.config", ())):
        with pytest.raises(StrategyImportError):
            guarded_import(name, fromlist=fromlist)
    with pytest.raises(StrategyImportError):
        guarded_import("math", level=1)


def test_loaded_strategy_runs_with_guards(candle_rows):
    from core.strategies.jobs import evaluate_last

    cls = load_strategy_class(get_template("bollinger_breakout").code)
    result = evaluate_last(cls, {"candles": candle_rows[:120]})
    assert result["candle_time"] == candle_rows[119][0]
    assert set(result) >= {"exit", "enter", "size_fraction", "stop_loss", "take_profit"}
