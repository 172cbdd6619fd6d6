"""What strategy code may touch: allowed modules, refused attributes and names, and why.

One policy, applied twice: by validation.py on the source (so the trader gets "line 4: ..." on
save) and by loader.py's run-time guards inside the sandbox (so a name built at run time, or an
object reached another way, is judged the same).
"""

from __future__ import annotations

import types
from typing import Any

from RestrictedPython.transformer import INSPECT_ATTRIBUTES

ALLOWED_MODULES = frozenset(
    {"math", "statistics", "decimal", "datetime", "numpy", "pandas", "ta", "dataclasses", "collections", "itertools"}
)
CONTRACT_MODULE = "core.strategies"
CONTRACT_NAMES = frozenset({"Strategy", "crossed_above", "crossed_below", "Position"})

# Sub-packages of allowed libraries that carry file, FFI or interpreter surfaces.
DENIED_SUBMODULES = frozenset(
    {
        "lib", "ctypeslib", "f2py", "testing", "distutils", "core", "io", "util", "compat",
        "plotting", "conftest", "tests", "random_state", "os", "sys",
    }
)  # fmt: skip

# Attribute names refused on any object: file and FFI entry points of numpy/pandas, string
# formatting that walks attributes, class-hierarchy walks, frame and generator internals.
DENIED_ATTRIBUTES = frozenset(
    {
        "format", "format_map", "mro", "with_traceback",
        "load", "loads", "save", "savez", "savez_compressed", "savetxt", "loadtxt", "genfromtxt",
        "fromfile", "tofile", "fromregex", "memmap", "dump", "dumps", "DataSource",
        "ctypes", "ctypeslib", "cffi", "capsule", "as_strided", "lib",
        "eval", "query", "HDFStore", "ExcelWriter", "ExcelFile",
        "system", "popen", "environ", "getenv", "modules", "attrgetter", "methodcaller",
    }
) | INSPECT_ATTRIBUTES  # fmt: skip

# Frames, tracebacks, generators, coroutines and code objects lead to other code's globals.
INTERNALS_ATTRIBUTES = frozenset(
    name
    for kind in (types.FrameType, types.TracebackType, types.GeneratorType, types.CoroutineType,
                 types.AsyncGeneratorType, types.CodeType)
    for name in dir(kind)
    if name.startswith(("f_", "tb_", "gi_", "cr_", "ag_", "co_"))
)  # fmt: skip

# Modules never reachable from user code, whatever allowed module re-exports them.
DANGEROUS_MODULES = frozenset(
    {
        "os", "posix", "sys", "subprocess", "shutil", "socket", "ssl", "ctypes", "cffi", "importlib",
        "builtins", "pickle", "marshal", "runpy", "code", "codeop", "inspect", "gc", "pathlib",
        "tempfile", "threading", "multiprocessing", "signal", "resource", "mmap", "pty", "fcntl",
        "urllib", "http", "requests", "operator", "traceback", "warnings", "linecache",
        "sysconfig", "site", "logging", "glob", "zipfile", "tarfile", "sqlite3", "asyncio",
        "select", "selectors", "posixpath", "genericpath", "pkgutil", "zipimport", "weakref",
    }
)  # fmt: skip

# Members of allowed modules that run other code, change process-wide settings or read files.
DENIED_MODULE_MEMBERS = frozenset(
    {
        "test", "show_config", "show_runtime", "show_versions", "info", "source", "get_include",
        "options", "set_option", "option_context", "reset_option", "describe_option",
    }
)  # fmt: skip

# pandas' plotting and styling import modules by name (a plotting backend, templates): refused on
# anything but the strategy itself, whose own attributes may carry these names.
DENIED_EXCEPT_ON_SELF = frozenset({"plot", "style", "hist", "boxplot"})

# pandas methods that accept a function *name* and look it up (on the object, or on numpy).
NAME_DISPATCH_METHODS = frozenset({"agg", "aggregate", "apply", "transform", "pipe", "map", "applymap"})
# The only names those methods may be given: pure reductions and transforms of the data.
SAFE_FUNCTION_NAMES = frozenset(
    {
        "sum", "mean", "median", "min", "max", "std", "var", "sem", "skew", "kurt", "prod", "count",
        "size", "nunique", "first", "last", "ohlc", "any", "all", "idxmin", "idxmax", "cumsum",
        "cumprod", "cummin", "cummax", "diff", "pct_change", "rank", "shift", "abs", "round",
        "quantile", "mode", "ffill", "bfill", "sqrt", "log", "exp",
    }
)  # fmt: skip

# `to_*` / `read_*` methods of pandas and numpy mostly read or write files; these do not.
ALLOWED_CONVERSIONS = frozenset(
    {
        "to_numpy", "to_list", "to_frame", "to_dict", "to_datetime", "to_numeric", "to_timedelta",
        "to_period", "to_timestamp", "to_offset", "to_pydatetime", "to_integral_value", "to_integral",
        "to_integral_exact", "to_eng_string",
    }
)  # fmt: skip


def attribute_refusal(name: str) -> str | None:
    """Why attribute `name` may not be accessed by strategy code, or None when it may."""
    if name.startswith("_"):
        return f"access to '{name}' is not allowed (names starting with '_' are private)"
    if name in DENIED_ATTRIBUTES:
        return f"attribute '{name}' is not allowed in strategies"
    if name in INTERNALS_ATTRIBUTES:
        return f"attribute '{name}' is not allowed (frames, tracebacks and generators' internals are private)"
    if (name.startswith("to_") or name.startswith("read_")) and name not in ALLOWED_CONVERSIONS:
        return f"attribute '{name}' is not allowed (file input/output is not available)"
    return None


# rolling(win_type=...) looks the name up in scipy.signal.windows: only its window functions.
WINDOW_TYPES = frozenset(
    {
        "barthann", "bartlett", "blackman", "blackmanharris", "bohman", "boxcar", "chebwin", "cosine",
        "dpss", "exponential", "flattop", "gaussian", "general_cosine", "general_gaussian",
        "general_hamming", "hamming", "hann", "kaiser", "lanczos", "nuttall", "parzen", "taylor",
        "triang", "tukey",
    }
)  # fmt: skip


def window_type_refusal(win_type: Any) -> str | None:
    """Why rolling(win_type=win_type) is refused, or None when it is a known window (or no window)."""
    if win_type is None or (isinstance(win_type, str) and win_type in WINDOW_TYPES):
        return None
    return f"win_type {win_type!r} is not a window function (use e.g. 'hann', 'triang' or 'gaussian')"


def function_name_refusal(name: str, method: str) -> str | None:
    """Why pandas' `method` may not be given the function name `name`, or None when it may."""
    if name in SAFE_FUNCTION_NAMES and method not in ("pipe", "map", "applymap"):
        return None
    return (
        f"the function name '{name}' is not allowed here: pandas would look it up by name; pass the "
        "function itself, or name a plain reduction such as 'sum', 'mean', 'max' or 'last'"
    )


def module_member_refusal(path: str, name: str) -> str | None:
    """Why `name` may not be read from the module `path` (a module of an allowed library)."""
    if name in DANGEROUS_MODULES or name in DENIED_SUBMODULES:
        return f"'{path}.{name}' is not available to strategies (a module outside the allowed libraries)"
    if name in DENIED_MODULE_MEMBERS:
        return f"'{path}.{name}' is not available to strategies"
    return None


def import_refusal(module: str, names: list[str] | None) -> str | None:
    """Why `import module` / `from module import names` is refused, or None when allowed."""
    if module == CONTRACT_MODULE:
        if not names:
            return "import the contract as `from core.strategies import Strategy`"
        bad = [n for n in names if n not in CONTRACT_NAMES]
        if bad:
            return f"'{bad[0]}' cannot be imported from core.strategies (allowed: {', '.join(sorted(CONTRACT_NAMES))})"
        return None
    parts = module.split(".")
    if parts[0] not in ALLOWED_MODULES:
        return f"import of '{module}' is not allowed (allowed: {', '.join(sorted(ALLOWED_MODULES))})"
    for part in parts[1:]:
        if part.startswith("_") or part in DENIED_SUBMODULES or attribute_refusal(part):
            return f"import of '{module}' is not allowed ('{part}' is off limits)"
    for name in names or ():
        why = attribute_refusal(name)
        if why:
            return f"cannot import '{name}' from {module}: {why}"
    return None
