"""The sandbox child: a fresh interpreter that runs one user strategy under OS limits.

Started by sandbox.py as `python -I -c ...` with an empty environment. Speaks JSON lines over
stdin (requests) and a private duplicate of stdout (responses); fd 1 itself points at /dev/null
so nothing the strategy or a library prints can corrupt the protocol.

Start-up order matters: rlimits first, then the heavy imports and a warm-up (they need to read
the standard library and open files), then the layers that would break those imports: a new
network namespace, dropping to an unprivileged uid, RLIMIT_NPROC=0, and last an audit hook that
refuses files, sockets, processes and interpreter introspection for the rest of the process' life.
"""

from __future__ import annotations

import contextlib
import ctypes
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

NOBODY = 65534
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_NO_NEW_PRIVS = 38
STRATEGY_FILENAME = "<strategy>"

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


def _libc_call(name: str, *args: int) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return getattr(libc, name)(*args) == 0


def _isolate_network() -> str | None:
    """A private network namespace has no interfaces, not even a usable loopback."""
    if _libc_call("unshare", CLONE_NEWNET):
        return "network namespace"
    if _libc_call("unshare", CLONE_NEWUSER | CLONE_NEWNET):
        return "user+network namespace"
    return None


def _drop_privileges() -> list[str]:
    layers = []
    if _libc_call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
        layers.append("no_new_privs")
    if os.getuid() == 0:
        with contextlib.suppress(OSError):
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            layers.append("uid nobody")
    if os.getuid() != 0:
        # Counted per uid: with 0 the strategy can start neither processes nor threads.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
            layers.append("nproc=0")
    return layers


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
    def readable(path: Any) -> bool:
        if not isinstance(path, (str, bytes)):
            return False
        text = os.fsdecode(path)
        real = os.path.realpath(text)
        return any((real + os.sep).startswith(root) for root in read_roots)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writes = bool((mode and any(c in mode for c in "wax+")) or (flags or 0) & _WRITE_FLAGS)
            if writes or not readable(path):
                raise SandboxViolation(f"file access is not allowed in strategies: {path!r}")
        elif event in ("os.listdir", "os.scandir"):
            if not readable(args[0] if args else "."):
                raise SandboxViolation("listing directories is not allowed in strategies")
        elif event == "import":
            if args[0].split(".")[0] in _BLOCKED_IMPORT_ROOTS and args[0] not in sys.modules:
                raise SandboxViolation(f"import of '{args[0]}' is not allowed in strategies")
        elif event in _BLOCKED_EVENTS or event.startswith(_BLOCKED_EVENT_PREFIXES):
            raise SandboxViolation(f"operation '{event}' is not allowed in strategies")

    sys.addaudithook(hook)


def _user_line(tb: Any) -> int | None:
    line = None
    for frame in traceback.extract_tb(tb):
        if frame.filename == STRATEGY_FILENAME:
            line = frame.lineno
    return line


def describe_error(exc: BaseException, memory_mb: int) -> dict[str, Any]:
    """{type, message, line, candle_time} for the parent; `line` is a line of the user's code."""
    from core.strategies.contract import StrategyError
    from core.strategies.loader import StrategyAccessError, StrategyImportError
    from core.strategies.validation import StrategyCodeError

    line = getattr(exc, "line", None)
    if not isinstance(line, int):
        line = _user_line(exc.__traceback__)
    # The contract wraps what user code raised; classify by the original exception.
    cause = exc.__cause__ if isinstance(exc, StrategyError) and exc.__cause__ is not None else exc
    kind, message = type(cause).__name__, str(exc) or type(exc).__name__
    if isinstance(exc, StrategyCodeError):
        kind = "StrategyCodeError"
    elif isinstance(cause, MemoryError):
        kind, message = "MemoryLimit", f"the strategy exceeded the memory limit of {memory_mb} MB"
    elif isinstance(cause, RecursionError):
        kind, message = "RecursionLimit", "the strategy recursed too deeply"
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


class _Server:
    def __init__(self, out: Any, limits: dict[str, Any]):
        self.out = out
        self.limits = limits
        self.strategy_cls: type | None = None

    def send(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message, default=_json_default) + "\n")
        self.out.flush()

    def fail(self, exc: BaseException) -> None:
        restart = isinstance(exc, MemoryError) or isinstance(exc.__cause__, MemoryError)
        self.send({"ok": False, "error": describe_error(exc, self.limits["memory_mb"]), "restart": restart})

    def handle(self, request: dict[str, Any]) -> None:
        from core.strategies.loader import load_strategy_class, load_strategy_class_unchecked

        op = request.get("op")
        if op == "load":
            loader = load_strategy_class if request.get("static_checks", True) else load_strategy_class_unchecked
            self._arm_cpu_limit()
            self.strategy_cls = loader(request["code"])
            self.send({"ok": True, "result": {"class_name": self.strategy_cls.__name__}})
        elif op == "call":
            if self.strategy_cls is None:
                raise RuntimeError("no strategy loaded")
            fn = _resolve_job(request["job"])
            self._arm_cpu_limit()
            result = fn(self.strategy_cls, request.get("payload") or {})
            if not isinstance(result, dict):
                raise TypeError(f"job {request['job']} returned {type(result).__name__}, expected dict")
            self.send({"ok": True, "result": result, "cpu_used": _cpu_used()})
        else:
            raise ValueError(f"unknown sandbox request {op!r}")

    def _arm_cpu_limit(self) -> None:
        """RLIMIT_CPU counts the whole life of the process: move the soft limit for each call."""
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = min(math.ceil(_cpu_used() + float(self.limits["cpu_seconds"])), hard)
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
                if isinstance(exc, MemoryError) or isinstance(exc.__cause__, MemoryError):
                    return


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    stdin = sys.stdin
    setup = json.loads(stdin.readline())
    limits = setup["limits"]
    sys.dont_write_bytecode = True
    _apply_rlimits(limits)
    try:
        _warm_up()
        for job in setup.get("preload", []):
            _resolve_job(job)
    except BaseException as exc:  # noqa: BLE001
        out.write(json.dumps({"ok": False, "error": describe_error(exc, limits["memory_mb"])}) + "\n")
        out.flush()
        return
    layers = ["rlimits", "clean environment", "audit hook"]
    network = _isolate_network()
    if network:
        layers.append(network)
    layers += _drop_privileges()
    _install_audit_hook(_allowed_read_roots(setup["project_root"]))
    server = _Server(out, limits)
    server.send({"ok": True, "ready": True, "layers": layers, "pid": os.getpid()})
    server.serve(stdin)


if __name__ == "__main__":
    main()
