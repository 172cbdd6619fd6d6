"""The strategy contract shared by backtests and live bots.

A strategy subclasses `Strategy`, computes its indicators once in `init()` over the whole series,
and answers per closed candle through `should_long/should_short/should_exit` (+ `position_size`,
`stop_loss`, `take_profit` when it enters). `StrategyRuntime` binds a strategy to candles: after
`init()` every per-candle array the strategy holds becomes a view ending at the current candle,
so `[-1]` is "now" and nothing after it is reachable through the contract.

Speed: calling Python methods on every one of a million candles is the cost of a backtest. A
decision method that reads only candle/indicator values at fixed offsets, params and constants
(checked from its bytecode and while it runs) is evaluated once over whole arrays instead
("symbolic" evaluation below); it gives the same answer at every candle as the per-candle call,
and the tests prove it by running both. Anything else runs per candle, exactly as written.
"""

from __future__ import annotations

import builtins
import dis
import math
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd

DECISION_METHODS = ("should_long", "should_short", "should_exit")
ORDER_METHODS = ("position_size", "stop_loss", "take_profit")
DATA_FIELDS = ("open", "high", "low", "close", "volume", "time")


# --------------------------------------------------------------------------- errors


def format_candle_time(time_ms: int | None) -> str | None:
    if time_ms is None:
        return None
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class StrategyError(Exception):
    """A strategy that failed or answered nonsense, with where it happened."""

    def __init__(
        self,
        message: str,
        method: str | None = None,
        candle_time_ms: int | None = None,
        line: int | None = None,
        kind: str = "invalid_return",
    ):
        self.message = message
        self.method = method
        self.candle_time_ms = candle_time_ms
        self.line = line
        self.kind = kind
        parts = ["parameters" if method == "params" else f"{method}()" if method else "strategy"]
        if candle_time_ms is not None:
            parts.append(f"at candle {format_candle_time(candle_time_ms)}")
        if line is not None:
            parts.append(f"(line {line})")
        super().__init__(" ".join(parts) + f": {message}")

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "method": self.method,
            "candle_time_ms": self.candle_time_ms,
            "candle_time": format_candle_time(self.candle_time_ms),
            "line": self.line,
            "message": self.message,
            "text": str(self),
        }


class ParamError(StrategyError):
    def __init__(self, message: str):
        super().__init__(message, method="params", kind="params")


# --------------------------------------------------------------------------- position


@dataclass(frozen=True)
class Position:
    """What the strategy holds: side "long", "short" or None (flat), base size and entry price."""

    side: str | None = None
    size: float = 0.0
    entry_price: float | None = None
    entry_time_ms: int | None = None

    @property
    def is_flat(self) -> bool:
        return self.side is None

    @property
    def is_long(self) -> bool:
        return self.side == "long"

    @property
    def is_short(self) -> bool:
        return self.side == "short"


FLAT = Position()


# --------------------------------------------------------------------------- the contract


@dataclass(frozen=True)
class CandleData:
    """Candle columns. Full pandas Series inside `init()`; numpy views ending at "now" afterwards."""

    open: Any
    high: Any
    low: Any
    close: Any
    volume: Any
    time: Any


class Strategy:
    """Subclass this. See docs and `core/strategies/examples/sma_cross.py`."""

    params: ClassVar[dict[str, Any]] = {}

    def __init__(self, data: CandleData, params: Mapping[str, Any]):
        self.data = data
        self.params = types.MappingProxyType(dict(params))
        self.__dict__["_position"] = FLAT

    @property
    def position(self) -> Position:
        return self.__dict__["_position"]

    def init(self) -> None:
        """Compute indicators over the whole series with `self.indicator(...)`."""

    def indicator(self, func: Callable, *args, **kwargs) -> np.ndarray:
        """Run `func(*args, **kwargs)` once over the whole series; one float per candle."""
        result = func(*args, **kwargs)
        if isinstance(result, pd.DataFrame) and result.shape[1] == 1:
            result = result.iloc[:, 0]
        values = np.asarray(result, dtype="float64")
        length = len(self.data.close)
        if values.ndim != 1 or len(values) != length:
            raise StrategyError(
                f"indicator {getattr(func, '__name__', func)!r} returned shape {values.shape}; "
                f"it must return one value per candle ({length})",
                method="init",
                kind="indicator",
            )
        return values

    def should_long(self) -> bool:
        return False

    def should_short(self) -> bool:
        return False

    def should_exit(self) -> bool:
        return False

    def position_size(self) -> float:
        return 1.0

    def stop_loss(self) -> float | None:
        return None

    def take_profit(self) -> float | None:
        return None


def _last_two(x) -> tuple[Any, Any] | None:
    if isinstance(x, (int, float, np.number)) and not isinstance(x, bool):
        return x, x
    if len(x) < 2:
        return None
    return x[-2], x[-1]


def _crossed(a, b, above: bool) -> bool:
    if isinstance(a, SymbolicSeries) or isinstance(b, SymbolicSeries):
        return _symbolic_cross(a, b, above)  # type: ignore[return-value]
    pair_a, pair_b = _last_two(a), _last_two(b)
    if pair_a is None or pair_b is None:
        return False
    (a_prev, a_now), (b_prev, b_now) = pair_a, pair_b
    if above:
        return bool(a_prev <= b_prev and a_now > b_now)
    return bool(a_prev >= b_prev and a_now < b_now)


def crossed_above(a, b) -> bool:
    """True on the candle where `a` goes from <= `b` to > `b` (a, b: series views or numbers)."""
    return _crossed(a, b, above=True)


def crossed_below(a, b) -> bool:
    """True on the candle where `a` goes from >= `b` to < `b` (a, b: series views or numbers)."""
    return _crossed(a, b, above=False)


# --------------------------------------------------------------------------- params


def resolve_params(strategy_cls: type[Strategy], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overridden by user values; each value must have its default's type."""
    defaults = getattr(strategy_cls, "params", {}) or {}
    if not isinstance(defaults, Mapping) or not all(isinstance(k, str) for k in defaults):
        raise ParamError("`params` must be a dict of name -> default value")
    resolved = dict(defaults)
    for name, value in (overrides or {}).items():
        if name not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise ParamError(f"unknown parameter {name!r} (known: {known})")
        resolved[name] = _coerce_param(name, value, defaults[name])
    return resolved


_TRUE_WORDS = {"true", "1", "yes", "on"}
_FALSE_WORDS = {"false", "0", "no", "off"}


def _coerce_param(name: str, value: Any, default: Any) -> Any:
    def bad(expected: str) -> ParamError:
        return ParamError(f"parameter {name!r} must be {expected}, got {value!r}")

    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
            return value.strip().lower() in _TRUE_WORDS
        raise bad("true or false")
    if isinstance(default, int):
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise bad("an integer") from None
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad("an integer")
    if isinstance(default, float):
        if isinstance(value, bool):
            raise bad("a number")
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise bad("a number") from None
        if not math.isfinite(number):
            raise bad("a finite number")
        return number
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad("text")
        return value
    return value


# --------------------------------------------------------------------------- symbolic evaluation


class NotVectorizable(Exception):
    """Raised while probing a method that cannot be evaluated over whole arrays."""


_REAL_TYPES = (int, float, np.integer, np.floating, np.bool_, bool)
_IMMUTABLE = (bool, int, float, str, bytes, type(None), np.number, np.bool_)
# Access guards RestrictedPython inserts into compiled user code; they only forward the access.
_RESTRICTED_GUARDS = {
    "_getattr_",
    "_getitem_",
    "_getiter_",
    "_write_",
    "_inplacevar_",
    "_unpack_sequence_",
    "_iter_unpack_sequence_",
    "_apply_",
}
# Builtins that either work elementwise on a Vec (abs) or refuse it (bool, float, min, ...).
_SAFE_BUILTINS = {"abs", "bool", "float", "int", "min", "max", "len", "round"}
_FORBIDDEN_OPS = {
    "STORE_GLOBAL",
    "DELETE_GLOBAL",
    "IMPORT_NAME",
    "IMPORT_FROM",
    "LOAD_DEREF",
    "STORE_DEREF",
    "LOAD_CLASSDEREF",
    "LOAD_NAME",
    "STORE_ATTR",
    "DELETE_ATTR",
    "YIELD_VALUE",
}


def _resolve_global(globals_: Mapping[str, Any], name: str) -> Any:
    if name in globals_:
        return globals_[name]
    table = globals_.get("__builtins__", builtins)
    return table.get(name) if isinstance(table, Mapping) else getattr(table, name, None)


def _is_pure_code(code: types.CodeType, globals_: Mapping[str, Any]) -> bool:
    """True when `code` touches no globals but our helpers, guards and a few builtins."""
    if code.co_freevars:
        return False
    for ins in dis.get_instructions(code):
        if ins.opname in _FORBIDDEN_OPS:
            return False
        if ins.opname == "LOAD_GLOBAL":
            name = ins.argval
            if name in _RESTRICTED_GUARDS:
                continue
            if name in ("crossed_above", "crossed_below") and globals_.get(name) in (crossed_above, crossed_below):
                continue
            if name in _SAFE_BUILTINS and _resolve_global(globals_, name) is getattr(builtins, name):
                continue
            return False
    return all(_is_pure_code(c, globals_) for c in code.co_consts if isinstance(c, types.CodeType))


def is_pure_function(func: Any) -> bool:
    func = getattr(func, "__func__", func)
    code = getattr(func, "__code__", None)
    return code is not None and _is_pure_code(code, func.__globals__)


def _shift(arr: np.ndarray, lag: int) -> np.ndarray:
    if lag == 0:
        return arr
    out = np.empty_like(arr)
    out[:lag] = np.nan if arr.dtype.kind == "f" else 0
    out[lag:] = arr[: len(arr) - lag]
    return out


class _Probe:
    """Collects, while a method runs symbolically, from which candle index its answer is valid."""

    def __init__(self, n: int):
        self.n = n
        self.valid_from = 0

    def need(self, index: int) -> None:
        self.valid_from = max(self.valid_from, index)


class SymbolicSeries:
    """Stands for a view at every candle at once; `s[-k]` is the whole column shifted by k-1."""

    __slots__ = ("_arr", "_probe")
    __array_ufunc__ = None

    def __init__(self, arr: np.ndarray, probe: _Probe):
        self._arr = arr
        self._probe = probe

    def at_lag(self, lag: int) -> np.ndarray:
        return _shift(self._arr, lag)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
            key = int(key)
            if key < 0:
                lag = -key - 1
                if lag >= self._probe.n:
                    raise NotVectorizable("lag longer than the series")
                self._probe.need(lag)  # a view shorter than lag+1 raises IndexError per candle
                return Vec(self.at_lag(lag))
            if key >= self._probe.n:
                raise NotVectorizable("index beyond the series")
            self._probe.need(key)
            return Vec(np.full(self._probe.n, self._arr[key]))
        raise NotVectorizable("slices and non-integer indexes run per candle")

    def _refuse(self, *args, **kwargs):
        raise NotVectorizable("series used as a whole")

    __len__ = __iter__ = __bool__ = __array__ = __float__ = __int__ = __index__ = _refuse
    __add__ = __sub__ = __mul__ = __truediv__ = __lt__ = __gt__ = __le__ = __ge__ = _refuse
    __radd__ = __rsub__ = __rmul__ = __rtruediv__ = __neg__ = __abs__ = __pow__ = _refuse
    __eq__ = __ne__ = _refuse  # type: ignore[assignment]
    __hash__ = None  # type: ignore[assignment]

    def __getattr__(self, name):
        raise NotVectorizable(f"series attribute {name!r}")


def _symbolic_cross(a, b, above: bool) -> Vec:
    def pair(x):
        if isinstance(x, SymbolicSeries):
            return x.at_lag(1), x.at_lag(0)
        if isinstance(x, _REAL_TYPES):
            return x, x
        raise NotVectorizable("crossed_* over something else than views and numbers")

    (a_prev, a_now), (b_prev, b_now) = pair(a), pair(b)
    with np.errstate(invalid="ignore"):
        out = (a_prev <= b_prev) & (a_now > b_now) if above else (a_prev >= b_prev) & (a_now < b_now)
    out = np.asarray(out, dtype=bool).copy()
    if out.shape == ():
        raise NotVectorizable("crossed_* of two numbers")
    out[0] = False  # a one-candle view has no previous value: the per-candle helper says False
    return Vec(out)


def _vec_operand(x):
    if isinstance(x, Vec):
        return x._v
    if isinstance(x, _REAL_TYPES):
        return x
    raise NotVectorizable(f"operand of type {type(x).__name__}")


def _binary(op: Callable, reflected: bool = False):
    def method(self, other):
        other_v = _vec_operand(other)
        with np.errstate(all="ignore"):
            return Vec(op(other_v, self._v) if reflected else op(self._v, other_v))

    return method


class Vec:
    """One value per candle; operators act elementwise, exactly as on each candle's numpy scalars."""

    __slots__ = ("_v",)
    __array_ufunc__ = None  # numpy scalars defer to our reflected operators
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, values: np.ndarray):
        self._v = values

    import operator as _op

    __add__, __radd__ = _binary(_op.add), _binary(_op.add, True)
    __sub__, __rsub__ = _binary(_op.sub), _binary(_op.sub, True)
    __mul__, __rmul__ = _binary(_op.mul), _binary(_op.mul, True)
    __truediv__, __rtruediv__ = _binary(_op.truediv), _binary(_op.truediv, True)
    __floordiv__, __rfloordiv__ = _binary(_op.floordiv), _binary(_op.floordiv, True)
    __mod__, __rmod__ = _binary(_op.mod), _binary(_op.mod, True)
    __pow__, __rpow__ = _binary(_op.pow), _binary(_op.pow, True)
    __and__, __rand__ = _binary(_op.and_), _binary(_op.and_, True)
    __or__, __ror__ = _binary(_op.or_), _binary(_op.or_, True)
    __xor__, __rxor__ = _binary(_op.xor), _binary(_op.xor, True)
    __lt__, __le__ = _binary(_op.lt), _binary(_op.le)
    __gt__, __ge__ = _binary(_op.gt), _binary(_op.ge)
    __eq__, __ne__ = _binary(_op.eq), _binary(_op.ne)  # type: ignore[assignment]
    del _op

    def __neg__(self):
        return Vec(-self._v)

    def __pos__(self):
        return self

    def __abs__(self):
        return Vec(np.abs(self._v))

    def __invert__(self):
        return Vec(~self._v)

    def _refuse(self, *args, **kwargs):
        raise NotVectorizable("a per-candle value used in Python control flow")

    __bool__ = __float__ = __int__ = __index__ = __len__ = __iter__ = __array__ = __round__ = _refuse
    __getitem__ = __complex__ = _refuse

    def __getattr__(self, name):
        raise NotVectorizable(f"value attribute {name!r}")


class _SymbolicData:
    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, SymbolicSeries]):
        self._fields = fields

    def __getattr__(self, name):
        try:
            return self._fields[name]
        except KeyError:
            raise NotVectorizable(f"data.{name}") from None


# --------------------------------------------------------------------------- runtime


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
    self.__dict__["_state_changed"] = True
    object.__setattr__(self, name, value)


def _refuse_setattr(self, name, value):
    raise NotVectorizable("writes strategy state")


class StrategyRuntime:
    """A strategy bound to candles: run `init()` once, then ask it at any candle index."""

    def __init__(self, strategy_cls: type[Strategy], candles: pd.DataFrame, params: Mapping | None = None):
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
            strategy.init()
        except StrategyError as exc:
            raise StrategyError(exc.message, "init", None, user_line(exc, self.user_files), exc.kind) from exc
        except Exception as exc:
            raise self._wrap(exc, "init", None) from exc
        self.series = self._collect_series(strategy)
        self.strategy = self._bind_views(strategy)
        self._methods = {m: getattr(self.strategy, m) for m in DECISION_METHODS + ORDER_METHODS}

    def _wrap(self, exc: Exception, method: str, index: int | None) -> StrategyError:
        time_ms = None if index is None else int(self.times[index])
        return StrategyError(
            f"{type(exc).__name__}: {exc}", method, time_ms, user_line(exc, self.user_files), "exception"
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
        data_cls = type("CandleViews", (), {f: _view_property(a) for f, a in self.columns.items()})
        self.data_views = data_cls()
        self.data_views.__dict__["_cursor"] = 0
        strategy.__dict__["data"] = self.data_views
        strategy.__dict__["_cursor"] = 0
        strategy.__dict__["_state_changed"] = False
        strategy.__class__ = self._view_cls
        return strategy

    @property
    def state_changed(self) -> bool:
        return self.strategy.__dict__["_state_changed"]

    def set_position(self, position: Position) -> None:
        self.strategy.__dict__["_position"] = position

    # ---- per-candle calls, validated

    def call(self, method: str, index: int):
        self.strategy.__dict__["_cursor"] = index
        self.data_views.__dict__["_cursor"] = index
        try:
            value = self._methods[method]()
        except StrategyError as exc:
            raise StrategyError(exc.message, method, int(self.times[index]), exc.line, exc.kind) from exc
        except Exception as exc:
            raise self._wrap(exc, method, index) from exc
        return self.validate(method, value, index)

    def validate(self, method: str, value: Any, index: int):
        def bad(expected: str) -> StrategyError:
            code = getattr(getattr(self.strategy_cls, method), "__code__", None)
            line = code.co_firstlineno if code is not None and code.co_filename in self.user_files else None
            return StrategyError(
                f"must return {expected}, got {type(value).__name__} {value!r}", method, int(self.times[index]), line
            )

        if method in DECISION_METHODS:
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            raise bad("True or False")
        if isinstance(value, bool) or not (value is None or isinstance(value, (int, float, np.integer, np.floating))):
            raise bad("a number" if method == "position_size" else "a price or None")
        if method == "position_size":
            if value is None or not (math.isfinite(value) and 0 < value <= 1):
                raise bad("a fraction of the free balance in (0, 1]")
            return float(value)
        if value is None:
            return None
        if not (math.isfinite(value) and value > 0):
            raise bad("a positive price or None")
        return float(value)

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
        return Decision(
            exit=exit_now,
            enter=side,
            size_fraction=self.call("position_size", index),
            stop_loss=self.call("stop_loss", index),
            take_profit=self.call("take_profit", index),
        )

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
        probe = _Probe(self.n)
        allowed_methods: dict[str, bool] = {}
        series_names = set(self.series)
        symbolic_series = {name: SymbolicSeries(arr, probe) for name, arr in self.series.items()}
        data = _SymbolicData({f: SymbolicSeries(a, probe) for f, a in self.columns.items()})
        user_cls = self.strategy_cls

        def getattribute(obj, name):
            if name in series_names:
                return symbolic_series[name]
            if name == "data":
                return data
            if name in ("params", "__class__"):  # __class__: isinstance() checks in access guards
                return object.__getattribute__(obj, name)
            if name in ("position", "indicator") or name.startswith("__"):
                raise NotVectorizable(f"reads self.{name}")
            value = object.__getattribute__(obj, name)
            if isinstance(value, _IMMUTABLE):
                return value
            if isinstance(value, types.MethodType) and getattr(user_cls, name, None) is value.__func__:
                if name not in allowed_methods:
                    allowed_methods[name] = is_pure_function(value)
                if allowed_methods[name]:
                    return value
            raise NotVectorizable(f"reads self.{name}")

        probe_cls = type(user_cls.__name__, (user_cls,), {"__getattribute__": getattribute, "__setattr__": _refuse_setattr})
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
        return result, probe.valid_from


@dataclass(frozen=True)
class Decision:
    """What the strategy decided at a close; the engine fills it at the next price."""

    exit: bool = False
    enter: str | None = None
    size_fraction: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
