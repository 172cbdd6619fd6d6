"""`StrategyRuntime` binds a strategy to candles: after `init()` every per-candle array the strategy
holds becomes a view ending at the current candle, so `[-1]` is "now" and nothing after it is
reachable through the contract. A pure decision method is answered for every candle at once
(vectorizer.py); anything else is called per candle and its answer validated.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from core.strategies.contract import (
    DATA_FIELDS,
    DECISION_METHODS,
    FLAT,
    ORDER_METHODS,
    TRAIL_PCT_MAX,
    TRAIL_PCT_MIN,
    CandleData,
    Decision,
    Position,
    Strategy,
    StrategyError,
    ladder_problem,
    resolve_params,
)
from core.strategies.indicator_cache import IndicatorCache
from core.strategies.vectorizer import (
    IMMUTABLE_TYPES,
    NotVectorizable,
    Probe,
    SymbolicData,
    SymbolicSeries,
    Vec,
    is_pure_function,
    refuse_setattr,
)


def _user_code_files(strategy_cls: type) -> set[str]:
    files = set()
    for klass in strategy_cls.__mro__:
        if klass in (Strategy, object):
            continue
        for value in vars(klass).values():
            func = getattr(value, "__func__", value)
            code = getattr(func, "__code__", None)
            if code is not None:
                files.add(code.co_filename)
    return files


def user_line(exc: BaseException, user_files: set[str]) -> int | None:
    """The deepest line of the traceback that is in the user's strategy code."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in user_files:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _view_property(arr: np.ndarray) -> property:
    return property(lambda obj: arr[: obj.__dict__["_cursor"] + 1])


def _tracking_setattr(self, name, value):
    # Attributes written after init() are state a symbolic evaluation could have missed.
    self.__dict__["_written"].add(name)
    object.__setattr__(self, name, value)


class StrategyRuntime:
    """A strategy bound to candles: run `init()` once, then ask it at any candle index."""

    def __init__(
        self,
        strategy_cls: type[Strategy],
        candles: pd.DataFrame,
        params: Mapping | None = None,
        indicators: IndicatorCache | None = None,
    ):
        if not (isinstance(strategy_cls, type) and issubclass(strategy_cls, Strategy)):
            raise StrategyError("the strategy must be a class derived from Strategy", kind="contract")
        self.strategy_cls = strategy_cls
        self.params = resolve_params(strategy_cls, params)
        self.n = len(candles)
        self.times = candles["open_time"].to_numpy(dtype="int64")
        self.user_files = _user_code_files(strategy_cls)
        columns = {f: candles[f].to_numpy(dtype="float64") for f in DATA_FIELDS if f != "time"}
        columns["time"] = self.times
        self.columns = columns
        init_data = CandleData(**{f: pd.Series(columns[f], copy=True) for f in DATA_FIELDS})
        try:
            strategy = strategy_cls(init_data, self.params)
            if indicators is not None:  # a grid's runs share indicator results
                strategy.__dict__["_indicator_cache"] = indicators
            strategy.init()
            strategy.__dict__.pop("_indicator_cache", None)
        except StrategyError as exc:
            raise StrategyError(exc.message, "init", None, user_line(exc, self.user_files), exc.kind) from exc
        except Exception as exc:
            raise self._wrap(exc, "init", None) from exc
        self.series = self._collect_series(strategy)
        self.strategy = self._bind_views(strategy)
        self._callers = {m: self._caller(m) for m in DECISION_METHODS + ORDER_METHODS}
        self.symbolic_reads: set[str] = set()  # attributes read by the methods evaluated over arrays

    def _wrap(self, exc: Exception, method: str, index: int | None) -> StrategyError:
        time_ms = None if index is None else int(self.times[index])
        text = "the strategy recursed too deeply" if isinstance(exc, RecursionError) else str(exc)
        return StrategyError(
            f"{type(exc).__name__}: {text}", method, time_ms, user_line(exc, self.user_files), "exception"
        )

    def _collect_series(self, strategy: Strategy) -> dict[str, np.ndarray]:
        # Every per-candle array the strategy keeps becomes a view, so none can leak the future.
        series = {}
        for name, value in list(vars(strategy).items()):
            if name.startswith("_") or name in ("data", "params"):
                continue
            if isinstance(value, (np.ndarray, pd.Series)) and value.ndim == 1 and len(value) == self.n:
                series[name] = np.asarray(value)
                del strategy.__dict__[name]
        return series

    def _bind_views(self, strategy: Strategy) -> Strategy:
        cls = self.strategy_cls
        props = {name: _view_property(arr) for name, arr in self.series.items()}
        self._view_cls = type(cls.__name__, (cls,), {**props, "__setattr__": _tracking_setattr})
        self._untracked_view_cls = type(cls.__name__, (cls,), props)
        data_cls = type("CandleViews", (), {f: _view_property(a) for f, a in self.columns.items()})
        self.data_views = data_cls()
        self.data_views.__dict__["_cursor"] = 0
        strategy.__dict__["data"] = self.data_views
        strategy.__dict__["_cursor"] = 0
        strategy.__dict__["_written"] = set()
        strategy.__class__ = self._view_cls
        return strategy

    def track_writes_only_if_read(self) -> None:
        """Stop recording attribute writes (a Python call per write) when no vectorized answer read any
        attribute but the series views (which cannot be written), `data` and `params` (checked after)."""
        if self.symbolic_reads <= {*self.series, "data", "params"}:
            self.strategy.__class__ = self._untracked_view_cls
            self._bound = (self.strategy.__dict__["data"], self.strategy.__dict__["params"])

    @property
    def vectorized_inputs_changed(self) -> bool:
        """Whether an attribute a vectorized answer read was written after init() (its answer may be stale)."""
        state = self.strategy.__dict__
        if self.strategy.__class__ is self._untracked_view_cls:
            return (state.get("data"), state.get("params")) != self._bound
        return not state["_written"].isdisjoint(self.symbolic_reads)

    def set_position(self, position: Position) -> None:
        self.strategy.__dict__["_position"] = position

    # ---- per-candle calls, validated

    def call(self, method: str, index: int):
        return self._callers[method](index)

    def caller(self, method: str) -> Callable[[int], Any]:
        """`method` at a candle index, its answer validated: what the engine calls per candle."""
        return self._callers[method]

    def _caller(self, method: str) -> Callable[[int], Any]:
        bound = getattr(self.strategy, method)
        state, data_state = self.strategy.__dict__, self.data_views.__dict__
        decision = method in DECISION_METHODS

        def ask(index: int):
            state["_cursor"] = data_state["_cursor"] = index
            try:
                value = bound()
            except StrategyError as exc:
                raise StrategyError(exc.message, method, int(self.times[index]), exc.line, exc.kind) from exc
            except Exception as exc:
                raise self._wrap(exc, method, index) from exc
            if decision and (value is True or value is False):
                return value
            return self.validate(method, value, index)

        return ask

    def validate(self, method: str, value: Any, index: int):
        def bad(expected: str) -> StrategyError:
            return StrategyError(
                f"must return {expected}, got {type(value).__name__} {value!r}",
                method,
                int(self.times[index]),
                self._user_line(method),
            )

        if method in DECISION_METHODS:
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            raise bad("True or False")
        if method == "take_profit_ladder":
            problem = None if value is None else ladder_problem(value)
            if problem is not None:
                raise bad(f"{problem}, or None")
            return None if value is None else tuple((float(pct), float(size)) for pct, size in value)
        if isinstance(value, bool) or not (value is None or isinstance(value, (int, float, np.integer, np.floating))):
            raise bad(
                {"position_size": "a number", "trailing_stop": "a trail in % or None"}.get(method, "a price or None")
            )
        if method == "position_size":
            if value is None or not (math.isfinite(value) and 0 < value <= 1):
                raise bad("a fraction of the free balance in (0, 1]")
            return float(value)
        if value is None:
            return None
        if method == "trailing_stop":
            if not (math.isfinite(value) and TRAIL_PCT_MIN <= value <= TRAIL_PCT_MAX):
                raise bad(f"a trail in % between {TRAIL_PCT_MIN:g} and {TRAIL_PCT_MAX:g}, or None")
            return float(value)
        if not (math.isfinite(value) and value > 0):
            raise bad("a positive price or None")
        return float(value)

    def _user_line(self, method: str) -> int | None:
        """The line where the user's code defines `method` (None: the contract's default)."""
        code = getattr(getattr(self.strategy_cls, method), "__code__", None)
        return code.co_firstlineno if code is not None and code.co_filename in self.user_files else None

    def decide_at(self, index: int, position: Position) -> Decision:
        """The full per-candle decision at the close of candle `index` (what a live bot asks)."""
        self.set_position(position)
        exit_now = not position.is_flat and self.call("should_exit", index)
        side = None
        if position.is_flat or exit_now:
            self.set_position(FLAT)
            if self.call("should_long", index):
                side = "long"
            elif self.call("should_short", index):
                side = "short"
        self.set_position(position)
        if side is None:
            return Decision(exit=exit_now)
        size_fraction = self.call("position_size", index)  # the order methods in the engine's order
        stop_loss, take_profit = self.call("stop_loss", index), self.call("take_profit", index)
        trailing_stop = self.exits_checked(stop_loss, take_profit, self.call("trailing_stop", index), index)
        ladder = self.ladder_checked(take_profit, trailing_stop, self.call("take_profit_ladder", index), index)
        return Decision(
            exit=exit_now,
            enter=side,
            size_fraction=size_fraction,
            stop_loss=stop_loss,
            take_profit=take_profit,
            trailing_stop=trailing_stop,
            take_profit_ladder=ladder,
        )

    def exits_checked(
        self, stop_loss: float | None, take_profit: float | None, trailing_stop: float | None, index: int
    ) -> float | None:
        """The trail, refused beside a stop-loss or a take-profit: at a spot venue a trailing stop and another
        exit would hold the same coins, so a live bot could not place both (a webhook alert cannot give a trail
        and a stop-loss either), and a backtest must not show what the bot cannot do."""
        if trailing_stop is not None and (stop_loss is not None or take_profit is not None):
            given = [f"{name}()" for name, v in (("stop_loss", stop_loss), ("take_profit", take_profit)) if v]
            raise StrategyError(
                f"a trailing stop is the position's only exit order: {' and '.join(given)} must return None when "
                "trailing_stop() returns a trail (or trailing_stop() None)",
                "trailing_stop",
                int(self.times[index]),
                self._user_line("trailing_stop"),
            )
        return trailing_stop

    def ladder_checked(
        self, take_profit: float | None, trailing_stop: float | None, ladder: tuple | None, index: int
    ) -> tuple | None:
        """The ladder, refused beside a take-profit or a trailing stop (the rungs are the position's targets and
        a live bot's rungs hold its coins); a stop-loss goes with it (each rung an OCO with the stop)."""
        if ladder is not None and (take_profit is not None or trailing_stop is not None):
            given = [f"{name}()" for name, v in (("take_profit", take_profit), ("trailing_stop", trailing_stop)) if v]
            raise StrategyError(
                f"a take-profit ladder is the position's only target: {' and '.join(given)} must return None when "
                "take_profit_ladder() returns rungs (a stop_loss() may go with it)",
                "take_profit_ladder",
                int(self.times[index]),
                self._user_line("take_profit_ladder"),
            )
        return ladder

    # ---- symbolic evaluation

    def symbolic_signal(self, method: str) -> tuple[np.ndarray, int] | str:
        """(answer at every candle, first index it is valid from) or the reason it must run per candle."""
        outcome = self._symbolic_eval(method)
        if isinstance(outcome, str):
            return outcome
        result, valid_from = outcome
        if isinstance(result, Vec) and result._v.dtype == bool and result._v.shape == (self.n,):
            return result._v, valid_from
        if isinstance(result, (bool, np.bool_)):
            return np.full(self.n, bool(result)), valid_from
        return "does not return a per-candle bool"

    def symbolic_constant(self, method: str) -> tuple[Any, int] | str:
        """(the same answer at every candle from index valid_from, valid_from) or why not."""
        outcome = self._symbolic_eval(method)
        if isinstance(outcome, str):
            return outcome
        result, valid_from = outcome
        if isinstance(result, Vec):
            return "answer changes per candle"
        return result, valid_from

    def _symbolic_eval(self, method: str) -> tuple[Any, int] | str:
        func = getattr(self.strategy_cls, method)
        if not is_pure_function(func):
            return "uses globals, closures or writes state"
        probe = Probe(self.n)
        allowed_methods: dict[str, bool] = {}
        reads: set[str] = set()
        series_names = set(self.series)
        symbolic_series = {name: SymbolicSeries(arr, probe) for name, arr in self.series.items()}
        data = SymbolicData({f: SymbolicSeries(a, probe) for f, a in self.columns.items()})
        user_cls = self.strategy_cls

        def getattribute(obj, name):
            reads.add(name)
            if name in series_names:
                return symbolic_series[name]
            if name == "data":
                return data
            if name in ("params", "__class__"):  # __class__: isinstance() checks in access guards
                return object.__getattribute__(obj, name)
            if name in ("position", "indicator") or name.startswith("__"):
                raise NotVectorizable(f"reads self.{name}")
            value = object.__getattribute__(obj, name)
            if isinstance(value, IMMUTABLE_TYPES):
                return value
            if isinstance(value, types.MethodType) and getattr(user_cls, name, None) is value.__func__:
                if name not in allowed_methods:
                    allowed_methods[name] = is_pure_function(value)
                if allowed_methods[name]:
                    return value
            raise NotVectorizable(f"reads self.{name}")

        probe_cls = type(
            user_cls.__name__, (user_cls,), {"__getattribute__": getattribute, "__setattr__": refuse_setattr}
        )
        strategy = self.strategy
        object.__setattr__(strategy, "__class__", probe_cls)
        try:
            result = getattr(user_cls, method)(strategy)
        except NotVectorizable as exc:
            return str(exc)
        except Exception as exc:  # the per-candle run will report it where it happens
            return f"raised {type(exc).__name__} when evaluated over arrays"
        finally:
            object.__setattr__(strategy, "__class__", self._view_cls)
        self.symbolic_reads |= reads
        return result, probe.valid_from
