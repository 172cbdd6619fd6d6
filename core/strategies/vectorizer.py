"""The bytecode vectoriser: a strategy's decision method evaluated once over whole arrays.

Speed: calling Python methods on every one of a million candles is the cost of a backtest. A
decision method that reads only candle/indicator values at fixed offsets, params and constants
(checked from its bytecode and while it runs) is evaluated once over whole arrays instead
("symbolic" evaluation); it gives the same answer at every candle as the per-candle call, and the
tests prove it by running both. Anything else runs per candle, exactly as written.
"""

from __future__ import annotations

import builtins
import dis
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from core.strategies.contract import crossed_above, crossed_below


class NotVectorizable(Exception):
    """Raised while probing a method that cannot be evaluated over whole arrays."""


_REAL_TYPES = (int, float, np.integer, np.floating, np.bool_, bool)
IMMUTABLE_TYPES = (bool, int, float, str, bytes, type(None), np.number, np.bool_)
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
    "_self_check_",
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


class Probe:
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

    def __init__(self, arr: np.ndarray, probe: Probe):
        self._arr = arr
        self._probe = probe

    def at_lag(self, lag: int) -> np.ndarray:
        return _shift(self._arr, lag)

    @staticmethod
    def symbolic_cross(a, b, above: bool) -> Vec:
        """The contract's crossed_above/crossed_below when a or b is a symbolic view."""
        return _symbolic_cross(a, b, above)

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
    __eq__ = __ne__ = _refuse
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
    __eq__, __ne__ = _binary(_op.eq), _binary(_op.ne)
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


class SymbolicData:
    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, SymbolicSeries]):
        self._fields = fields

    def __getattr__(self, name):
        try:
            return self._fields[name]
        except KeyError:
            raise NotVectorizable(f"data.{name}") from None


def refuse_setattr(self, name, value):
    raise NotVectorizable("writes strategy state")
