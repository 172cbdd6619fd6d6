"""Restricted loading and the run-time guards (in-process, with trusted or harmless code)."""

from __future__ import annotations

import datetime
import decimal
import math
import statistics
import sys
import types

import numpy
import pandas
import pytest
import ta
from hypothesis import given, settings
from hypothesis import strategies as st

import core.strategies
from core.strategies import Strategy
from core.strategies.loader import (
    StrategyAccessError,
    StrategyImportError,
    guarded_apply,
    guarded_getattr,
    guarded_getitem,
    guarded_import,
    guarded_write,
    load_strategy_class,
)
from core.strategies.policy import (
    ALLOWED_MODULES,
    DANGEROUS_MODULES,
    DENIED_SUBMODULES,
    NAME_DISPATCH_METHODS,
    SAFE_FUNCTION_NAMES,
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
    for obj, name in (
        (statistics, "sys"),
        (numpy, "load"),
        (numpy, "lib"),
        (numpy, "ctypeslib"),
        ("x", "format"),
        (int, "mro"),
        (Strategy, "__init__"),
        (numpy.zeros(2), "tofile"),
    ):
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
    for name, fromlist in (
        ("os", ()),
        ("numpy.lib", ()),
        ("core.strategies", ()),
        ("core.strategies", ("StrategyRuntime",)),
        ("numpy", ("load",)),
        ("core.infra.config", ()),
    ):
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


def _hours(values: list[float]) -> pandas.Series:
    return pandas.Series(values, index=pandas.date_range("2024-01-01", periods=len(values), freq="30min"))


def test_name_taking_pandas_methods_refuse_function_names_at_run_time():
    series = _hours([1.0, 2.0, 3.0, 4.0])
    frame = pandas.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    holders = (series, frame, frame.groupby("a"), series.rolling(2), series.resample("1h"), pandas.Series)
    for holder in holders:
        for method in ("agg", "aggregate", "apply", "transform", "pipe"):
            if not hasattr(holder, method):
                continue
            checked = guarded_getattr(holder, method)
            args = (series,) if holder is pandas.Series else ()
            for name in ("eval", "query", "__getattribute__", "to_csv", "lib", "ctypeslib"):
                with pytest.raises(StrategyAccessError, match="function name"):
                    checked(*args, name)
    for spec in (["sum", "eval"], {"a": ["max", "query"]}, ("eval",)):
        with pytest.raises(StrategyAccessError):
            guarded_getattr(frame, "agg")(spec)
    with pytest.raises(StrategyAccessError):
        guarded_getattr(frame.groupby("a"), "agg")(out=("b", "eval"))
    with pytest.raises(StrategyAccessError):
        guarded_getattr(series.groupby([1, 1, 2, 2]), "agg")(out="__reduce_ex__")
    with pytest.raises(StrategyAccessError):
        guarded_getattr(frame.groupby("a"), "agg")(out=pandas.NamedAgg(column="b", aggfunc="eval"))
    with pytest.raises(StrategyAccessError):
        guarded_getattr(frame, "apply")(func="eval", expr="a")
    with pytest.raises(StrategyAccessError):
        guarded_getattr(series, "map")("sum")
    for call in (
        lambda: guarded_getattr(series, "rolling")(2, win_type="__class__"),
        lambda: guarded_getattr(pandas.Series, "rolling")(series, 2, None, False, "get_window"),
    ):
        with pytest.raises(StrategyAccessError, match="win_type"):
            call()


def test_name_taking_pandas_methods_still_compute_what_strategies_ask():
    series = _hours([1.0, 2.0, 3.0, 4.0])
    frame = pandas.DataFrame({"a": [1.0, 1.0, 2.0], "b": [3.0, 4.0, 5.0]})
    assert guarded_getattr(series, "agg")("sum") == 10.0
    assert guarded_getattr(series.rolling(2), "agg")(["mean", "max"])["max"].iloc[-1] == 4.0
    assert guarded_getattr(series.resample("1h"), "agg")("last").tolist() == [2.0, 4.0]
    assert guarded_getattr(frame.groupby("a"), "agg")(total=("b", "sum"))["total"].tolist() == [7.0, 5.0]
    assert guarded_getattr(series, "map")({1.0: "low"}).iloc[0] == "low"
    assert guarded_getattr(series, "rolling")(2, win_type="boxcar").sum().iloc[-1] == 7.0
    assert guarded_getattr(series, "apply")(abs, args=()).tolist() == [1.0, 2.0, 3.0, 4.0]
    assert guarded_getattr(series, "pipe")((lambda obj: len(obj), "obj")) == 4
    checked_agg = guarded_getitem([guarded_getattr(series, "agg")], 0)
    assert guarded_apply(checked_agg, *["max"]) == 4.0
    assert guarded_getattr(series.groupby([1, 1, 2, 2]), "agg")(out="sum")["out"].tolist() == [3.0, 7.0]
    named = guarded_getattr(frame.groupby("a"), "agg")(top=pandas.NamedAgg(column="b", aggfunc="max"))
    assert named["top"].tolist() == [4.0, 5.0]
    assert guarded_getattr(series, "agg")(lambda values, extra: values.sum() + extra, extra=1) == 11.0


def test_frames_tracebacks_and_code_objects_are_refused_whatever_the_attribute():
    gen = (x for x in [1])
    try:
        raise ValueError("x")
    except ValueError as exc:
        tb = exc.__traceback__
    for obj in (gen.gi_frame, tb, gen.gi_code):
        for name in ("clear", "f_back", "tb_frame", "co_consts", "replace", "tb_next"):
            with pytest.raises(StrategyAccessError):
                guarded_getattr(obj, name)
    for name in ("gi_frame", "gi_code", "gi_yieldfrom"):
        with pytest.raises(StrategyAccessError):
            guarded_getattr(gen, name)
    assert guarded_getattr(gen, "send") is not None


def test_hidden_builtins_and_foreign_modules_are_refused_however_they_are_reached():
    holder = types.SimpleNamespace(run=eval, opener=open, kind=object, system=sys, total=sum)
    for name in ("run", "opener", "kind", "system"):
        with pytest.raises(StrategyAccessError):
            guarded_getattr(holder, name)
    assert guarded_getattr(holder, "total") is sum
    for container, key in (({"x": exec}, "x"), ([sys], 0), ({"m": numpy.lib}, "m"), ([statistics.mul], 0)):
        with pytest.raises(StrategyAccessError):
            guarded_getitem(container, key)
    assert guarded_getitem([len, 2], 0) is len
    for obj, name in (
        (pandas.Series([1.0]), "plot"),
        (pandas.DataFrame, "style"),
        (pandas, "set_option"),
        (numpy.random.PCG64(), "lock"),
        (numpy.random.PCG64(), "cffi"),
        (core.strategies, "StrategyRuntime"),
        (numpy.lib, "stride_tricks"),
        (ta.trend, "np_lib"),
        (decimal, "sys"),
    ):
        with pytest.raises((StrategyAccessError, AttributeError)):
            guarded_getattr(obj, name)
    assert guarded_getattr(core.strategies, "crossed_above") is core.strategies.crossed_above


def test_every_module_reachable_from_the_allowed_libraries_is_itself_allowed():
    """Walk the module graph exactly as strategy code can: ta.trend.np, ta.utils.pd, ..."""
    start = [math, statistics, decimal, datetime, numpy, pandas, ta]
    seen, queue, callables = set(), list(start), 0
    while queue:
        module = queue.pop()
        if module.__name__ in seen:
            continue
        seen.add(module.__name__)
        for name in dir(module):
            try:
                value = guarded_getattr(module, name)
            except (StrategyAccessError, AttributeError, ImportError):
                continue
            if isinstance(value, types.ModuleType):
                queue.append(value)
            elif callable(value):
                callables += 1
                owner = getattr(value, "__module__", None) or ""
                assert owner.split(".")[0] not in DANGEROUS_MODULES, f"{module.__name__}.{name} from {owner}"
    assert {"ta.trend", "ta.utils", "numpy.random", "pandas.api.types"} <= seen and callables > 1000
    for name in seen:
        parts = name.split(".")
        assert parts[0] in ALLOWED_MODULES and not set(parts[1:]) & DENIED_SUBMODULES, name
        assert not any(p.startswith("_") for p in parts[1:]), name


_OBJECTS = (
    numpy,
    pandas,
    ta.trend,
    math,
    Strategy,
    numpy.zeros(2),
    pandas.Series([1.0]),
    pandas.DataFrame({"a": [1]}),
    "text",
    3,
    (x for x in []),
    len,
    guarded_getattr,
    types.SimpleNamespace(a=1),
    statistics.NormalDist(),
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_OBJECTS), st.text(max_size=20).map(lambda tail: "_" + tail))
def test_every_private_name_is_refused_on_every_object(obj, name):
    with pytest.raises(StrategyAccessError, match="private"):
        guarded_getattr(obj, name)


@settings(max_examples=150, deadline=None)
@given(
    st.text(max_size=20).filter(lambda name: name not in SAFE_FUNCTION_NAMES),
    st.sampled_from(sorted(NAME_DISPATCH_METHODS - {"applymap"})),
    st.sampled_from(["plain", "list", "dict", "keyword"]),
)
def test_no_unsafe_function_name_reaches_pandas(name, method, shape):
    series = pandas.Series([1.0, 2.0])
    checked = guarded_getattr(series, method)
    if method == "map":  # its containers are lookup tables: only a name as the function is refused
        shape = "plain"
    with pytest.raises(StrategyAccessError, match="function name"):
        if shape == "keyword":
            checked(func=name)
        else:
            checked({"plain": name, "list": ["sum", name], "dict": {"x": name}}[shape])


_NAMES = st.one_of(st.sampled_from(sorted(SAFE_FUNCTION_NAMES)), st.text(max_size=12))
_SPECS = st.recursive(_NAMES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner),
                      max_leaves=6)  # fmt: skip


def _leaves(spec):
    if isinstance(spec, str):
        return [spec]
    items = spec.values() if isinstance(spec, dict) else spec
    return [leaf for item in items for leaf in _leaves(item)]


@settings(max_examples=150, deadline=None)
@given(_SPECS)
def test_a_nested_aggregation_spec_passes_only_when_every_name_in_it_is_safe(spec):
    checked = guarded_getattr(pandas.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}), "agg")
    if all(leaf in SAFE_FUNCTION_NAMES for leaf in _leaves(spec)):
        try:
            checked(spec)
        except StrategyAccessError:
            raise
        except Exception:  # noqa: BLE001 - pandas may reject the shape; what matters is that we let it try
            pass
    else:
        with pytest.raises(StrategyAccessError):
            checked(spec)
