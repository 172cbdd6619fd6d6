"""The sandbox child: a fresh interpreter that runs one user strategy.

Started by sandbox.py under bubblewrap (sandbox_os.py: namespaces, read-only filesystem, seccomp)
as `python -I -c ...` with an empty environment. Speaks JSON lines over stdin (requests) and a
private duplicate of stdout (responses); fds 1 and 2 point at /dev/null so nothing the strategy or a
library prints can corrupt the protocol.

Start-up order matters: rlimits first, then the heavy imports and a warm-up, then the layers that
would break those imports: a second seccomp filter (no execve, no new process), RLIMIT_NPROC=0, and
last an audit hook that refuses files, sockets, processes and interpreter introspection. The hook is
a closure over frozen data: nothing user code could rewrite (a module global, sys.modules) changes
what it refuses, and this module is removed from sys.modules before user code runs.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import importlib
import json
import math
import os
import resource
import statistics
import sys
import traceback
from typing import Any

from core.strategies import _seccomp
from core.strategies.phase_timer import STRATEGY_FILENAME, PhaseTimeout, PhaseTimer, candles_in

_BLOCKED_EVENTS = frozenset(
    {
        "os.system", "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.putenv", "os.unsetenv",
        "os.chdir", "os.chmod", "os.chown", "os.link", "os.symlink", "os.remove", "os.rename",
        "os.rmdir", "os.mkdir", "os.truncate", "os.utime", "os.setxattr", "os.removexattr",
        "os.lockf", "subprocess.Popen", "code.__new__", "function.__new__", "gc.get_objects",
        "gc.get_referrers", "gc.get_referents", "sys.settrace", "sys.setprofile",
        "sys._current_frames", "sys._current_exceptions", "sys.addaudithook", "mmap.__new__",
        "pty.spawn", "shutil.rmtree", "shutil.copyfile", "shutil.move", "webbrowser.open",
        "urllib.Request", "ftplib.connect", "http.client.connect", "imaplib.open", "nntplib.connect",
        "poplib.connect", "smtplib.connect", "telnetlib.Telnet.open",
    }
)  # fmt: skip
_BLOCKED_EVENT_PREFIXES = ("socket.", "os.exec", "os.spawn", "os.posix_spawn", "ctypes.", "_ctypes.")
_BLOCKED_IMPORT_ROOTS = frozenset(
    {
        "socket", "_socket", "ssl", "_ssl", "ctypes", "_ctypes", "subprocess", "_posixsubprocess",
        "multiprocessing", "_multiprocessing", "pty", "mmap", "http", "urllib", "ftplib", "smtplib",
        "requests", "asyncio", "threading", "signal", "resource", "importlib", "pickle", "_pickle",
        "marshal", "shutil", "tempfile", "webbrowser",
    }
)  # fmt: skip
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class SandboxViolation(PermissionError):
    """An operation the sandbox forbids; raised from the audit hook."""


def _apply_rlimits(limits: dict[str, Any]) -> None:
    memory = int(limits["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    files = int(limits["max_open_files"])
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
    lifetime = int(limits["lifetime_cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (lifetime, lifetime + 1))


def _lock_down() -> list[str]:
    """No write, no exec, no new process, ever (landlock where the kernel has it, then seccomp)."""
    abi = _seccomp.lock_down()
    layers = [f"landlock abi {abi}"] if abi else []
    layers.append("seccomp: no exec, no fork")
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        layers.append("nproc=0")
    return layers


def _drop_ctypes_stand_in() -> None:
    """ctypes cannot load here (its shared object is /dev/null, see sandbox_os.py), yet pandas.errors
    imports it for Windows only: the boot line puts an empty stand-in in sys.modules for the imports,
    removed here before user code runs. Any real FFI module loaded by then stops the start."""
    stand_in = sys.modules.pop("ctypes", None)
    loaded = [name for name in ("_ctypes", "cffi", "_cffi_backend") if name in sys.modules]
    if loaded or (
        stand_in is not None
        and vars(stand_in).keys() - {"__name__", "__doc__", "__package__", "__loader__", "__spec__"}
    ):
        raise RuntimeError(f"a foreign-function module was loaded in the sandbox: {loaded or ['ctypes']}")


def _warm_up() -> None:
    """Import and exercise the allowed libraries now, while files may still be read."""
    import numpy as np
    import pandas as pd
    import ta

    import core.strategies  # noqa: F401 - the contract
    import core.strategies.jobs  # noqa: F401
    import core.strategies.loader  # noqa: F401

    close = pd.Series(np.linspace(100.0, 120.0, 80) + np.sin(np.arange(80)))
    frame = pd.DataFrame({"high": close + 1, "low": close - 1, "close": close, "volume": close * 0 + 5})
    ta.trend.sma_indicator(close, window=5)
    ta.trend.ema_indicator(close, window=5)
    ta.trend.MACD(close).macd_diff()
    ta.momentum.rsi(close, window=14)
    ta.volatility.BollingerBands(close).bollinger_hband()
    ta.volatility.average_true_range(frame["high"], frame["low"], frame["close"])
    ta.trend.ADXIndicator(frame["high"], frame["low"], frame["close"]).adx()
    close.rolling(5).mean().ewm(span=3).mean().diff().shift(1).fillna(0).pct_change()
    pd.to_datetime(np.arange(3) * 60_000, unit="ms", utc=True)
    statistics.mean([1.0, 2.0])
    decimal.Decimal("1.5").quantize(decimal.Decimal("0.1"))
    datetime.datetime.now(datetime.UTC)
    math.isfinite(1.0)


def _allowed_read_roots(project_root: str) -> tuple[str, ...]:
    roots = {os.path.join(project_root, "core"), sys.prefix, sys.base_prefix, "/usr/share/zoneinfo"}
    return tuple(os.path.realpath(r) + os.sep for r in roots)


def _install_audit_hook(read_roots: tuple[str, ...]) -> None:
    """Every name the hook uses is bound here, once: rebinding a module global later changes nothing."""
    blocked_events, blocked_prefixes, blocked_imports = _BLOCKED_EVENTS, _BLOCKED_EVENT_PREFIXES, _BLOCKED_IMPORT_ROOTS
    write_flags, violation, loaded = _WRITE_FLAGS, SandboxViolation, frozenset(sys.modules)
    realpath, fsdecode, sep, str_or_bytes = os.path.realpath, os.fsdecode, os.sep, (str, bytes)

    def readable(path: Any) -> bool:
        if not isinstance(path, str_or_bytes):
            return False
        real = realpath(fsdecode(path)) + sep
        return any(real.startswith(root) for root in read_roots)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writes = bool((mode and any(c in mode for c in "wax+")) or (flags or 0) & write_flags)
            if writes or not readable(path):
                raise violation(f"file access is not allowed in strategies: {path!r}")
        elif event in ("os.listdir", "os.scandir"):
            if not readable(args[0] if args else "."):
                raise violation("listing directories is not allowed in strategies")
        elif event == "import":
            if args[0].split(".")[0] in blocked_imports and args[0] not in loaded:
                raise violation(f"import of '{args[0]}' is not allowed in strategies")
        elif event in blocked_events or event.startswith(blocked_prefixes):
            raise violation(f"operation '{event}' is not allowed in strategies")

    sys.addaudithook(hook)


def _user_line(tb: Any) -> int | None:
    line = None
    for frame in traceback.extract_tb(tb):
        if frame.filename == STRATEGY_FILENAME:
            line = frame.lineno
    return line


def _phase_timeout_in(exc: BaseException | None) -> PhaseTimeout | None:
    """The PhaseTimeout behind an error raised while handling it (`except: <something that fails>`)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, PhaseTimeout):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _placed(exc: BaseException, message: str) -> str:
    """`message` after the method, candle and line a StrategyError names ("should_long() at candle ...")."""
    place = getattr(exc, "place", None)
    return f"{place}: {message}" if isinstance(place, str) else message


def describe_error(exc: BaseException, memory_mb: int) -> dict[str, Any]:
    """{type, message, line, candle_time} for the parent; `line` is a line of the user's code."""
    from core.strategies.contract import StrategyError
    from core.strategies.loader import StrategyAccessError, StrategyImportError
    from core.strategies.validation import StrategyCodeError

    exc = _phase_timeout_in(exc) or exc
    line = getattr(exc, "line", None)
    if not isinstance(line, int):
        line = _user_line(exc.__traceback__)
    # The contract wraps what user code raised; classify by the original exception.
    cause = exc.__cause__ if isinstance(exc, StrategyError) and exc.__cause__ is not None else exc
    kind, message = type(cause).__name__, str(exc) or type(exc).__name__
    if isinstance(exc, StrategyCodeError):
        kind = "StrategyCodeError"
    elif isinstance(exc, PhaseTimeout):
        kind = "Timeout"
    elif isinstance(cause, MemoryError):
        kind, message = "MemoryLimit", _placed(exc, f"the strategy exceeded the memory limit of {memory_mb} MB")
    elif isinstance(cause, RecursionError):
        kind, message = "RecursionLimit", _placed(exc, "the strategy recursed too deeply")
    elif isinstance(cause, (SandboxViolation, StrategyAccessError, StrategyImportError)):
        kind = "ForbiddenOperation"
    elif isinstance(exc, StrategyError) and exc.__cause__ is None:
        kind = "StrategyOutputError" if exc.kind == "invalid_return" else "StrategyError"
    candle_time = getattr(exc, "candle_time", None)
    return {
        "type": kind,
        "message": message[:2000],
        "line": line,
        "candle_time": candle_time if isinstance(candle_time, (int, float, str)) else None,
    }


def _json_default(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays
        return value.tolist()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} back from the sandbox")


def _resolve_job(job: str):
    module_name, _, func_name = job.partition(":")
    if not module_name.startswith("core.") or not func_name or func_name.startswith("_"):
        raise ValueError(f"job {job!r} is not a 'core.module:function' name")
    return getattr(importlib.import_module(module_name), func_name)


def _load_unguarded(code: str) -> type:
    """Plain compile and exec, no RestrictedPython: only for the tests of the OS layer alone."""
    from core.strategies import Strategy

    namespace: dict[str, Any] = {"__name__": "user_strategy"}
    exec(compile(code, STRATEGY_FILENAME, "exec"), namespace)  # noqa: S102 - the test-only unguarded mode
    found = [v for v in namespace.values() if isinstance(v, type) and issubclass(v, Strategy) and v is not Strategy]
    if len(found) != 1:
        raise ValueError("define exactly one subclass of Strategy")
    return found[0]


def _needs_restart(exc: BaseException) -> bool:
    """Memory errors and phase timeouts may leave library state half-updated: use a fresh child."""
    return isinstance(exc, MemoryError) or isinstance(exc.__cause__, MemoryError) or _phase_timeout_in(exc) is not None


class _Server:
    def __init__(self, out: Any, limits: dict[str, Any], python_guards: bool):
        self.out = out
        self.limits = limits
        self.python_guards = python_guards
        self.timer = PhaseTimer(limits["phase_seconds"], limits["init_seconds_per_candle"])
        self.strategy_cls: type | None = None

    def send(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message, default=_json_default) + "\n")
        self.out.flush()

    def fail(self, exc: BaseException) -> None:
        error = describe_error(exc, self.limits["memory_mb"])
        self.send({"ok": False, "error": error, "restart": _needs_restart(exc)})

    def handle(self, request: dict[str, Any]) -> None:
        from core.strategies.loader import load_strategy_class, load_strategy_class_unchecked

        op = request.get("op")
        if op == "load":
            if not self.python_guards:
                loader = _load_unguarded
            else:
                loader = load_strategy_class if request.get("static_checks", True) else load_strategy_class_unchecked
            self._arm_cpu_limit(0)
            with self.timer.for_candles(0):
                self.strategy_cls = loader(request["code"])
            self.send({"ok": True, "result": {"class_name": self.strategy_cls.__name__}})
        elif op == "call":
            if self.strategy_cls is None:
                raise RuntimeError("no strategy loaded")
            fn = _resolve_job(request["job"])
            payload = request.get("payload") or {}
            candles = candles_in(payload)
            self._arm_cpu_limit(candles)
            with self.timer.for_candles(candles):
                result = fn(self.strategy_cls, payload)
            if not isinstance(result, dict):
                raise TypeError(f"job {request['job']} returned {type(result).__name__}, expected dict")
            self.send({"ok": True, "result": result, "cpu_used": _cpu_used()})
        else:
            raise ValueError(f"unknown sandbox request {op!r}")

    def _arm_cpu_limit(self, candles: int) -> None:
        """RLIMIT_CPU counts the whole life of the process: move the soft limit for each call."""
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        budget = float(self.limits["cpu_seconds"]) + float(self.limits["seconds_per_candle"]) * candles
        soft = min(math.ceil(_cpu_used() + budget), hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))

    def serve(self, stdin: Any) -> None:
        for raw in stdin:
            try:
                request = json.loads(raw)
            except ValueError as exc:
                self.fail(exc)
                continue
            if request.get("op") == "exit":
                return
            try:
                self.handle(request)
            except BaseException as exc:  # noqa: BLE001 - every failure becomes a structured error
                self.fail(exc)
                if _needs_restart(exc):
                    return


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _forget_this_module() -> None:
    """User code finds neither this module nor its entry point through sys.modules."""
    sys.modules.pop(__name__, None)
    main_module = sys.modules.get("__main__")
    if main_module is not None:
        vars(main_module).pop("main", None)


def main() -> None:
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    stdin = sys.stdin
    setup = json.loads(stdin.readline())
    limits = setup["limits"]
    python_guards = bool(setup.get("python_guards", True))
    sys.dont_write_bytecode = True
    _apply_rlimits(limits)
    try:
        _warm_up()
        for job in setup.get("preload", []):
            _resolve_job(job)
        _drop_ctypes_stand_in()
        layers = ["rlimits", "clean environment", *_lock_down()]
    except BaseException as exc:  # noqa: BLE001
        out.write(json.dumps({"ok": False, "error": describe_error(exc, limits["memory_mb"])}) + "\n")
        out.flush()
        return
    if python_guards:
        _install_audit_hook(_allowed_read_roots(setup["project_root"]))
        layers.append("audit hook")
    server = _Server(out, limits, python_guards)
    _forget_this_module()
    server.send({"ok": True, "ready": True, "layers": layers, "pid": os.getpid()})
    server.serve(stdin)


if __name__ == "__main__":
    main()
