"""Restricted compile and load of user strategy code. Runs inside the sandbox child.

Every attribute read, attribute write, item read, iteration and import of user code goes through
the guards below (RestrictedPython rewrites the code to call them). The guards repeat the static
rules of validation.py at run time, so a name built dynamically is refused just like a literal one.
They also judge what an access returns, whatever object led there: a module outside the allowed
libraries, a frame, traceback or code object, a built-in outside the strategy's table (eval, open,
...) or anything of a dangerous module (os, sys, ctypes, ...) is refused. pandas methods that take a
function *name* (agg, apply, transform, pipe, map) come back wrapped: they refuse names other than
plain reductions, because pandas would look the name up on the object (DataFrame.eval, to_csv,
__getattribute__) or on numpy (numpy.lib) where no guard sees it.
"""

from __future__ import annotations

import builtins
import operator
import types
from typing import Any

import numpy as np
import pandas as pd
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence

from core.strategies.compiler import (
    INPLACE_ATTRIBUTE_GUARD,
    INPLACE_ITEM_GUARD,
    SELF_CHECK_GUARD,
    compile_strategy,
)
from core.strategies.contract import Strategy
from core.strategies.policy import (
    ALLOWED_MODULES,
    CONTRACT_MODULE,
    CONTRACT_NAMES,
    DANGEROUS_MODULES,
    DENIED_EXCEPT_ON_SELF,
    DENIED_SUBMODULES,
    NAME_DISPATCH_METHODS,
    attribute_refusal,
    function_name_refusal,
    import_refusal,
    module_member_refusal,
    window_type_refusal,
)
from core.strategies.validation import StrategyCodeError, validate_strategy_code

STRATEGY_MODULE_NAME = "user_strategy"

# Modules whose functions must never reach user code, even when an allowed library re-exports one.
_DANGEROUS_MODULE_ROOTS = DANGEROUS_MODULES | frozenset(
    {"_socket", "_ctypes", "io", "_io", "_thread", "_operator", "_pickle", "types", "core", "nt"}
)

# What user code is handed (the contract, its runtime views, symbolic values) and our guards.
_CONTRACT_IMPLEMENTATION = frozenset(
    {"core.strategies.contract", "core.strategies.runtime", "core.strategies.vectorizer", __name__}
)

_NOT_WRITABLE = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.BuiltinMethodType,
)

_BUILTIN_NAMES = (
    "None", "False", "True", "Ellipsis", "NotImplemented",
    "abs", "all", "any", "bool", "callable", "chr", "complex", "dict", "divmod", "enumerate",
    "filter", "float", "frozenset", "hash", "int", "isinstance", "issubclass", "iter", "len",
    "list", "map", "max", "min", "next", "ord", "pow", "range", "repr", "reversed", "round", "set",
    "slice", "sorted", "str", "sum", "tuple", "zip", "super", "property", "staticmethod",
    "classmethod", "bin", "hex", "oct",
    "ArithmeticError", "AssertionError", "AttributeError", "Exception", "IndexError", "KeyError",
    "LookupError", "NameError", "NotImplementedError", "OverflowError", "RuntimeError",
    "StopIteration", "TypeError", "ValueError", "ZeroDivisionError",
)  # fmt: skip


class StrategyAccessError(AttributeError):
    """User code touched something the sandbox policy refuses."""


class StrategyImportError(ImportError):
    """User code imported something outside the allow-list."""


def _module_is_allowed(module: types.ModuleType) -> bool:
    name = getattr(module, "__name__", "") or ""
    parts = name.split(".")
    if name == CONTRACT_MODULE:
        return False
    return parts[0] in ALLOWED_MODULES and not any(
        p in DENIED_SUBMODULES or (p.startswith("_") and i > 0) for i, p in enumerate(parts)
    )


def _in_dangerous_module(owner: Any) -> bool:
    if not isinstance(owner, str) or owner in _CONTRACT_IMPLEMENTATION:
        return False
    return owner.split(".")[0] in _DANGEROUS_MODULE_ROOTS


def _defined_in_dangerous_module(value: Any) -> bool:
    """A function or class of a dangerous module, or an object of a class of one (built-ins aside)."""
    owner = getattr(value, "__module__", None)
    if callable(value) and owner != "builtins" and _in_dangerous_module(owner):  # built-ins: _HIDDEN_BUILTINS
        return True
    owner = type(value).__module__
    return owner != "builtins" and _in_dangerous_module(owner)


# pandas' file readers and writers, styling (templates) and plotting (imports a backend by name).
_PANDAS_FOREIGN = ("pandas.io", "pandas.plotting")


def _from_pandas_io_or_plotting(value: Any) -> bool:
    owners = (getattr(value, "__module__", None) if callable(value) else None, type(value).__module__)
    return any(isinstance(o, str) and o.startswith(_PANDAS_FOREIGN) for o in owners)


# Built-ins outside the strategy's table (eval, exec, open, getattr, type, object, ...), found by
# identity so that no re-export or alias of them is handed to user code.
_HIDDEN_BUILTINS = frozenset(
    id(value)
    for name, value in vars(builtins).items()
    if name not in _BUILTIN_NAMES
    and callable(value)
    and not (isinstance(value, type) and issubclass(value, BaseException))
)
# Objects through which code reaches other code's globals: refused whole, whatever the attribute.
_INTERNALS = (types.FrameType, types.TracebackType, types.CodeType)
# On arrays these reach the memory behind a view: the candles after "now", or raw pointers.
_ARRAY_INTERNALS = frozenset({"base", "data", "ctypes", "setflags"})


def _value_refusal(value: Any) -> str | None:
    if isinstance(value, types.ModuleType):
        return None if _module_is_allowed(value) else f"module '{value.__name__}' is not available to strategies"
    if isinstance(value, _INTERNALS):
        return f"{type(value).__name__} objects are not available to strategies"
    if id(value) in _HIDDEN_BUILTINS or _defined_in_dangerous_module(value) or _from_pandas_io_or_plotting(value):
        return f"'{getattr(value, '__name__', type(value).__name__)}' is not available to strategies"
    return None


def _checked_value(value: Any) -> Any:
    why = _value_refusal(value)
    if why:
        raise StrategyAccessError(why)
    return value


def _holder_refusal(obj: Any, name: str) -> str | None:
    if isinstance(obj, _INTERNALS):
        return f"{type(obj).__name__} objects are not available to strategies"
    if isinstance(obj, types.ModuleType):
        if obj.__name__ == CONTRACT_MODULE:
            return None if name in CONTRACT_NAMES else f"'{name}' is not part of the strategy contract"
        if not _module_is_allowed(obj):
            return f"module '{obj.__name__}' is not available to strategies"
        return module_member_refusal(obj.__name__, name)
    if name in _ARRAY_INTERNALS and isinstance(obj, np.ndarray):
        return f"array attribute '{name}' is not available to strategies"
    if name in DENIED_EXCEPT_ON_SELF and _from_pandas(obj):  # refused before pandas imports anything for it
        return f"pandas' '{name}' is not available to strategies"
    return None


# Speed: the verdicts below depend on the type alone for these, so each is judged once.
# A plain name: no holder-, value- or pandas-specific rule mentions it. A plain holder type: not a
# module, frame, traceback or code object. A plain value type: its instances are not callable (no
# function or class to judge one by one) and nothing about the type itself is refused.
_PLAIN_NAMES: set[str] = set()
_PLAIN_HOLDERS: set[type] = set()
_PLAIN_VALUES: set[type] = set()
_PLAIN_CACHE_LIMIT = 4096
_SPECIAL_NAMES = (
    _ARRAY_INTERNALS | DENIED_EXCEPT_ON_SELF | NAME_DISPATCH_METHODS | DENIED_SUBMODULES | DANGEROUS_MODULES
) | {"rolling"}


def _remember(cache: set, item: Any) -> None:
    if len(cache) < _PLAIN_CACHE_LIMIT:
        cache.add(item)


def _judge_value_type(kind: type) -> None:
    if not (
        any("__call__" in vars(klass) for klass in kind.__mro__)  # its instances are callable
        or issubclass(kind, (types.ModuleType, *_INTERNALS))
        or (kind.__module__ != "builtins" and _in_dangerous_module(kind.__module__))
        or str(kind.__module__).startswith(_PANDAS_FOREIGN)
    ):
        _remember(_PLAIN_VALUES, kind)


def guarded_getattr(obj: Any, name: str) -> Any:
    if type(name) is not str:
        raise TypeError("attribute name must be a string")
    if name in _PLAIN_NAMES and type(obj) in _PLAIN_HOLDERS:
        value = getattr(obj, name)
        if type(value) in _PLAIN_VALUES:
            return value
    why = attribute_refusal(name) or _holder_refusal(obj, name)
    if why:
        raise StrategyAccessError(why)
    value = _checked_value(getattr(obj, name))
    if name in NAME_DISPATCH_METHODS and callable(value) and _from_pandas(value):
        return _name_checked(value, name, skip_first=not isinstance(value, types.MethodType))
    if name == "rolling" and callable(value) and _from_pandas(value):
        return _window_checked(value, skip_first=not isinstance(value, types.MethodType))
    if name not in _SPECIAL_NAMES and not name.startswith(("to_", "read_")):
        _remember(_PLAIN_NAMES, name)
    if not issubclass(type(obj), (types.ModuleType, *_INTERNALS)):
        _remember(_PLAIN_HOLDERS, type(obj))
    _judge_value_type(type(value))
    return value


def guarded_self(obj: Any) -> None:
    """The entry of a method compiled with plain `self.name` access: `self` must be a strategy."""
    if not isinstance(obj, Strategy):
        raise StrategyAccessError("a strategy method can only be called on the strategy itself")


def _from_pandas(value: Any) -> bool:
    owner = getattr(value, "__module__", None)
    return isinstance(owner, str) and owner.split(".")[0] == "pandas"


def _refuse_function_names(spec: Any, method: str) -> None:
    """Raise when `spec` (a pandas function argument) names a function pandas would look up."""
    if isinstance(spec, str):
        why = function_name_refusal(spec, method)
        if why:
            raise StrategyAccessError(why)
    elif method in ("map", "applymap"):  # a dict or Series here is a lookup table, not function names
        return
    elif isinstance(spec, tuple) and method == "pipe":  # (function, keyword that receives the data)
        _refuse_function_names(spec[0] if spec else None, method)
    elif isinstance(spec, (list, tuple)):
        for item in spec:
            _refuse_function_names(item[-1] if isinstance(item, tuple) and item else item, method)
    elif isinstance(spec, dict):
        for item in spec.values():
            _refuse_function_names(item, method)


def _named_aggregation_function(value: Any) -> Any:
    """The function of one named aggregation: out=(column, func), out=pd.NamedAgg(...) or out=func."""
    if isinstance(value, tuple) and len(value) == 2:
        return value[1]
    if isinstance(value, pd.NamedAgg):
        return value.aggfunc
    return value


def _name_checked(method: Any, name: str, skip_first: bool) -> Any:
    """`method` (agg, apply, transform, pipe, map, ...) refusing function names outside the safe set."""

    def checked(*args: Any, **kwargs: Any) -> Any:
        positional = args[1:] if skip_first else args
        specs = [positional[0]] if positional else []
        specs += [value for key, value in kwargs.items() if key in ("func", "arg")]
        if name in ("agg", "aggregate") and all(spec is None for spec in specs):
            # named aggregation: out=(column, func) or, on a grouped Series, out=func
            specs = [_named_aggregation_function(v) for v in kwargs.values()]
        for spec in specs:
            _refuse_function_names(spec, name)
        return _checked_value(method(*args, **kwargs))

    return checked


def _window_checked(method: Any, skip_first: bool) -> Any:
    """pandas' rolling() refusing a win_type that is not a scipy window function."""

    def checked(*args: Any, **kwargs: Any) -> Any:
        positional = args[1:] if skip_first else args
        why = window_type_refusal(kwargs.get("win_type", positional[3] if len(positional) > 3 else None))
        if why:
            raise StrategyAccessError(why)
        return method(*args, **kwargs)

    return checked


def guarded_write(obj: Any) -> Any:
    if isinstance(obj, _NOT_WRITABLE):
        raise StrategyAccessError(f"cannot modify {type(obj).__name__} objects from a strategy")
    return obj


def guarded_getitem(obj: Any, key: Any) -> Any:
    if type(obj) in _PLAIN_HOLDERS:
        value = obj[key]
        if type(value) in _PLAIN_VALUES:
            return value
        return _checked_value(value)
    if isinstance(obj, types.ModuleType):
        raise StrategyAccessError("modules cannot be indexed")
    value = _checked_value(operator.getitem(obj, key))
    if not issubclass(type(obj), (types.ModuleType, *_INTERNALS)):
        _remember(_PLAIN_HOLDERS, type(obj))
    _judge_value_type(type(value))
    return value


def guarded_apply(func: Any, *args: Any, **kwargs: Any) -> Any:
    return _checked_value(_checked_value(func)(*args, **kwargs))


_INPLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "&=": operator.iand, "|=": operator.ior, "^=": operator.ixor,
    "@=": operator.imatmul,
}  # fmt: skip


def guarded_inplacevar(op: str, target: Any, value: Any) -> Any:
    return _INPLACE[op](target, value)


def guarded_inplace_attribute(obj: Any, name: str, op: str, value: Any) -> None:
    """`obj.name op= value`: read as `obj.name` is read, write as `obj.name = ...` is (obj passed _write_)."""
    setattr(obj, name, _INPLACE[op](guarded_getattr(obj, name), value))


def guarded_inplace_item(obj: Any, key: Any, op: str, value: Any) -> None:
    """`obj[key] op= value`: read as `obj[key]` is read, write as `obj[key] = ...` is (obj passed _write_)."""
    obj[key] = _INPLACE[op](guarded_getitem(obj, key), value)


def guarded_import(name: str, globals_: Any = None, locals_: Any = None, fromlist: Any = (), level: int = 0):
    if level:
        raise StrategyImportError("relative imports are not allowed in strategies")
    names = [str(n) for n in fromlist or ()]
    why = import_refusal(name, names)
    if why:
        raise StrategyImportError(why)
    module = builtins.__import__(name, None, None, fromlist or (), 0)
    for attr in names:
        guarded_getattr(module, attr)
    return module


def restricted_builtins() -> dict[str, Any]:
    table = {name: getattr(builtins, name) for name in _BUILTIN_NAMES}
    table["__build_class__"] = builtins.__build_class__
    table["__import__"] = guarded_import
    return table


def restricted_globals() -> dict[str, Any]:
    return {
        "__builtins__": restricted_builtins(),
        "__name__": STRATEGY_MODULE_NAME,
        "__metaclass__": type,
        "_getattr_": guarded_getattr,
        "_getitem_": guarded_getitem,
        "_getiter_": iter,
        "_write_": guarded_write,
        "_apply_": guarded_apply,
        "_inplacevar_": guarded_inplacevar,
        INPLACE_ATTRIBUTE_GUARD: guarded_inplace_attribute,
        INPLACE_ITEM_GUARD: guarded_inplace_item,
        SELF_CHECK_GUARD: guarded_self,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
    }


def load_strategy_class(code: str) -> type:
    """Validate, restricted-compile and execute `code`; return its Strategy subclass.

    Raises StrategyCodeError (with line numbers) when the code is refused; exceptions raised by the
    module body itself propagate unchanged with tracebacks pointing at compiler.STRATEGY_FILENAME.
    """
    report = validate_strategy_code(code)
    if not report.ok:
        raise StrategyCodeError(report.errors)
    return _restricted_load(code, report.class_name)


def load_strategy_class_unchecked(code: str) -> type:
    """Like load_strategy_class without our static checks (RestrictedPython and guards still apply).

    Only for the escape tests: it shows that the run-time layers hold on their own.
    """
    return _restricted_load(code, None)


def _restricted_load(code: str, class_name: str | None) -> type:
    compiled = compile_strategy(code)
    if compiled.errors or compiled.code is None:
        raise StrategyCodeError([_rp_error(e) for e in compiled.errors])
    namespace = restricted_globals()
    exec(compiled.code, namespace)  # restricted code with guarded globals
    candidates = [
        value
        for value in namespace.values()
        if isinstance(value, type)
        and issubclass(value, Strategy)
        and value is not Strategy
        and (class_name is None or value.__name__ == class_name)
    ]
    if len(candidates) != 1:
        raise StrategyCodeError([{"line": 1, "col": 0, "message": "define exactly one subclass of Strategy"}])
    return candidates[0]


def _rp_error(text: str) -> dict[str, Any]:
    head, _, message = text.partition(": ")
    if head.startswith("Line ") and head[5:].isdigit():
        return {"line": int(head[5:]), "col": 0, "message": message}
    return {"line": 1, "col": 0, "message": text}
