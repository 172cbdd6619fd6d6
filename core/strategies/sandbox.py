"""Run user strategy code in a separate, locked-down OS process.

Layers, each assuming the others failed (see PEERS.md section 4):
1. validation.py refuses the code on save (imports, dunders, known escape patterns);
2. loader.py compiles it with RestrictedPython and guards every attribute, item and import;
3. sandbox_child.py runs it in a fresh interpreter with an empty environment, rlimits (CPU, memory,
   files, no file writes, no core dumps), a private network namespace and an unprivileged uid where
   the host allows them, and an audit hook refusing files, sockets, processes and introspection;
4. this module enforces a wall-clock timeout, kills the whole process group, and turns every
   failure into a SandboxError whose `.error` is {type, message, line, candle_time}.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeGuard

from core.strategies import sandbox_os
from core.strategies.contract import TRAIL_PCT_MAX, TRAIL_PCT_MIN, ladder_problem
from core.strategies.phase_timer import candles_in

logger = logging.getLogger(__name__)

PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
# The empty `ctypes` stand-in only answers pandas' import of it; sandbox_child removes it before user code.
_BOOT = (
    "import sys, types; sys.path.insert(0, {root!r}); "
    "sys.modules['ctypes'] = types.ModuleType('ctypes', 'not available in the strategy sandbox'); "
    "from core.strategies.sandbox_child import main; main()"
)
# Libraries read these at import; one thread each keeps RLIMIT_NPROC=0 workable.
_CHILD_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
}


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: float = 10.0  # per call
    wall_seconds: float = 20.0  # per call
    memory_mb: int = 1024  # address space; numpy+pandas+ta alone map about 200 MB
    max_open_files: int = 32
    startup_seconds: float = 60.0  # a cold interpreter importing pandas on a busy machine
    lifetime_cpu_seconds: int = 3600  # a warm child is replaced before it reaches this
    seconds_per_candle: float = 0.0  # added to cpu_seconds and wall_seconds per candle of a call
    phase_seconds: float = 5.0  # one call of init() or a decision method; see phase_timer.py
    init_seconds_per_candle: float = 0.00005  # init() computes over the whole series

    def call_seconds(self, base: float, payload: Any) -> float:
        return base + self.seconds_per_candle * candles_in(payload)


class SandboxError(Exception):
    """A strategy run that failed; `.error` = {type, message, line, candle_time}."""

    def __init__(self, error_type: str, message: str, line: int | None = None, candle_time: Any = None):
        self.error = {"type": error_type, "message": message, "line": line, "candle_time": candle_time}
        super().__init__(f"{error_type}: {message}" + (f" (line {line})" if line else ""))

    @classmethod
    def from_dict(cls, error: dict[str, Any]) -> SandboxError:
        return cls(
            str(error.get("type") or "Error"),
            str(error.get("message") or "the strategy failed"),
            error.get("line") if isinstance(error.get("line"), int) else None,
            error.get("candle_time"),
        )


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class _Child:
    """One sandbox process and its JSON-lines channel."""

    def __init__(self, limits: SandboxLimits, preload: list[str], python_guards: bool = True):
        self.limits = limits
        self.proc = self._spawn()
        self._buffer = b""
        self._finalizer = weakref.finalize(self, _Child._reap, self.proc)
        self.layers: list[str] = []
        setup = {
            "limits": asdict(limits),
            "preload": preload,
            "project_root": PROJECT_ROOT,
            "python_guards": python_guards,
        }
        hello = self.request(setup, limits.startup_seconds, "starting the sandbox")
        self.layers = ["bubblewrap namespaces", "seccomp", *hello.get("layers", [])]
        self.cpu_used = 0.0

    @staticmethod
    def _spawn() -> subprocess.Popen:
        try:
            seccomp = sandbox_os.seccomp_fd()
            try:
                argv = [sys.executable, "-I", "-c", _BOOT.format(root=PROJECT_ROOT)]
                return subprocess.Popen(
                    sandbox_os.bwrap_command(argv, PROJECT_ROOT, seccomp),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,  # bwrap's own complaints; the child points fd 2 at /dev/null
                    cwd="/",
                    env=dict(_CHILD_ENV),
                    close_fds=True,
                    pass_fds=(seccomp,),
                    start_new_session=True,  # killing bwrap ends its pid namespace: the child goes with it
                )
            finally:
                os.close(seccomp)
        except (sandbox_os.SandboxUnavailable, OSError) as exc:
            raise SandboxError(
                "SandboxUnavailable", f"the strategy sandbox cannot start, user code was not run: {exc}"
            ) from None

    @staticmethod
    def _reap(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            logger.error("sandbox.unreaped", extra={"pid": proc.pid})
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                with contextlib.suppress(OSError):  # unflushed input to a child that is gone
                    stream.close()

    def kill(self) -> None:
        self._finalizer()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, message: dict[str, Any], timeout: float, doing: str) -> dict[str, Any]:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(message).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._death(doing) from None
        reply = self._read_line(timeout, doing)
        try:
            response = json.loads(reply)
        except ValueError:
            self.kill()
            raise SandboxError("Crash", f"the sandbox sent an unreadable reply while {doing}") from None
        if "cpu_used" in response:
            self.cpu_used = float(response["cpu_used"])
        if not response.get("ok"):
            if response.get("restart"):
                self.kill()
            raise SandboxError.from_dict(response.get("error") or {})
        return response

    def _read_line(self, timeout: float, doing: str) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self.kill()
                    raise SandboxError(
                        "Timeout", f"the strategy did not finish within {timeout:g} s (wall clock) while {doing}"
                    )
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise self._death(doing)
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _death(self, doing: str) -> SandboxError:
        try:
            returncode = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            returncode = None
        if returncode is not None and returncode > 128:
            returncode = 128 - returncode  # bwrap exits with 128 + the signal that killed the child
        complaint = self._bwrap_complaint() if not self.layers else ""
        self.kill()
        if complaint:
            return SandboxError(
                "SandboxUnavailable", f"the strategy sandbox cannot start, user code was not run: {complaint}"
            )
        if returncode == -signal.SIGXCPU:
            return SandboxError(
                "CpuTimeLimit", f"the strategy used more than {self.limits.cpu_seconds:g} s of CPU time while {doing}"
            )
        if returncode == -signal.SIGXFSZ:
            return SandboxError("ForbiddenOperation", "the strategy tried to write a file")
        how = f"killed by {_signal_name(returncode)}" if returncode and returncode < 0 else f"exit code {returncode}"
        return SandboxError("Crash", f"the sandbox process died while {doing} ({how})")

    def _bwrap_complaint(self) -> str:
        """What bwrap printed before the child started (a refused namespace, a missing path)."""
        if self.proc.stderr is None:
            return ""
        os.set_blocking(self.proc.stderr.fileno(), False)
        try:
            text = (self.proc.stderr.read(4000) or b"").decode(errors="replace")
        except OSError:
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        bwrap = [line for line in lines if line.startswith("bwrap:")]
        return " ".join(bwrap or lines[-1:])[:500]

    def load(self, code: str, static_checks: bool = True) -> str:
        reply = self.request(
            {"op": "load", "code": code, "static_checks": static_checks},
            self.limits.wall_seconds,
            "loading the strategy",
        )
        return reply["result"]["class_name"]

    def call(self, job: str, payload: dict[str, Any]) -> dict[str, Any]:
        timeout = self.limits.call_seconds(self.limits.wall_seconds, payload)
        reply = self.request({"op": "call", "job": job, "payload": payload}, timeout, f"running {job}")
        return reply["result"]


EVALUATE_LAST = "core.strategies.jobs:evaluate_last"


def _finite_positive(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def check_decision(result: Any) -> dict:
    """Check an evaluate_last answer in the parent: a compromised child still cannot send a wild order."""

    def refuse(why: str) -> SandboxError:
        return SandboxError("InvalidDecision", f"the sandbox returned an invalid decision: {why}")

    if not isinstance(result, dict) or not isinstance(result.get("exit"), bool):
        raise refuse("expected a dict with a boolean 'exit'")
    if not isinstance(result.get("candle_time"), int) or isinstance(result.get("candle_time"), bool):
        raise refuse("candle_time must be an integer")
    enter = result.get("enter")
    order_fields = ("size_fraction", "stop_loss", "take_profit", "trailing_stop", "take_profit_ladder")
    if enter is None:
        if any(result.get(f) is not None for f in order_fields):
            raise refuse("order fields without an entry")
        return result
    if enter not in ("long", "short"):
        raise refuse(f"enter must be 'long', 'short' or None, not {enter!r}")
    size = result.get("size_fraction")
    if not (_finite_positive(size) and size <= 1):
        raise refuse(f"size_fraction must be in (0, 1], not {size!r}")
    for field in ("stop_loss", "take_profit"):
        if result.get(field) is not None and not _finite_positive(result[field]):
            raise refuse(f"{field} must be a positive price or None, not {result[field]!r}")
    trail = result.get("trailing_stop")
    if trail is not None and not (_finite_positive(trail) and TRAIL_PCT_MIN <= trail <= TRAIL_PCT_MAX):
        raise refuse(
            f"trailing_stop must be a trail in % between {TRAIL_PCT_MIN:g} and {TRAIL_PCT_MAX:g}, not {trail!r}"
        )
    if trail is not None and (result.get("stop_loss") is not None or result.get("take_profit") is not None):
        raise refuse("a trailing stop comes without a stop_loss or take_profit")
    ladder = result.get("take_profit_ladder")
    if ladder is not None and (problem := ladder_problem(ladder)) is not None:
        raise refuse(f"take_profit_ladder must be {problem}, not {str(ladder)[:80]}")
    if ladder is not None and (trail is not None or result.get("take_profit") is not None):
        raise refuse("a take-profit ladder comes without a take_profit or trailing_stop")
    return result


def _check_job(job: str) -> None:
    module, _, func = job.partition(":")
    if not (module.startswith("core.") and func and not func.startswith("_")):
        raise ValueError(f"job must be 'core.module:function', got {job!r}")


def run_sandboxed(
    code: str,
    job: str,
    payload: dict,
    *,
    limits: SandboxLimits | None = None,
    _static_checks: bool = True,
    _python_guards: bool = True,
) -> dict:
    """Load `code` in a fresh sandbox process and return `job(strategy_cls, payload)`.

    `job` is "core.module:function"; the function runs inside the sandbox with the loaded Strategy
    subclass and must return a JSON-able dict. Every failure raises SandboxError.
    `_static_checks=False` exists only for the escape tests (run-time layers alone);
    `_python_guards=False` only for the OS-layer tests: no static checks, no RestrictedPython, no
    audit hook, no import blocker — arbitrary Python against bubblewrap, seccomp and rlimits alone.
    """
    _check_job(job)
    limits = limits or SandboxLimits()
    started = time.monotonic()
    child = _Child(limits, preload=[job], python_guards=_python_guards)
    try:
        child.load(code, static_checks=_static_checks and _python_guards)
        return child.call(job, payload)
    except SandboxError as exc:
        if exc.error["type"] == "SandboxUnavailable":  # the operator's problem, not the trader's
            logger.error("sandbox.unavailable", extra={"job": job, "reason": exc.error["message"]})
        else:
            logger.info(
                "sandbox.failed", extra={"job": job, "error_type": exc.error["type"], "line": exc.error["line"]}
            )
        raise
    finally:
        child.kill()
        logger.debug("sandbox.run", extra={"job": job, "seconds": round(time.monotonic() - started, 3)})


class WarmSandbox:
    """One long-lived sandbox with the strategy loaded, for live ticks that must cost milliseconds.

    Starts on first use (or `start()`); after a crash, timeout or memory error the next call starts
    a fresh child. Not shareable between processes; calls from several threads are serialized.
    """

    def __init__(self, code: str, *, limits: SandboxLimits | None = None, preload: tuple[str, ...] = ()):
        for job in preload:
            _check_job(job)
        self.code = code
        self.limits = limits or SandboxLimits()
        self.preload = list(preload) or [EVALUATE_LAST]
        self._child: _Child | None = None
        self._lock = threading.Lock()
        self.starts = 0
        self.class_name: str | None = None

    def __repr__(self) -> str:
        state = "running" if self._child and self._child.alive else "stopped"
        return f"<WarmSandbox {self.class_name or '?'} {state} starts={self.starts}>"

    @property
    def layers(self) -> list[str]:
        return list(self._child.layers) if self._child else []

    def start(self) -> None:
        with self._lock:
            self._ensure_child()

    def _ensure_child(self) -> _Child:
        child = self._child
        near_cap = child is not None and (
            child.cpu_used + 2 * self.limits.cpu_seconds >= self.limits.lifetime_cpu_seconds
        )
        if child is not None and child.alive and not near_cap:
            return child
        if child is not None:
            child.kill()
        self._child = None
        child = _Child(self.limits, preload=self.preload)
        self.starts += 1
        try:
            self.class_name = child.load(self.code)
        except SandboxError:
            child.kill()
            raise
        self._child = child
        return child

    def call(self, job: str, payload: dict) -> dict:
        _check_job(job)
        with self._lock:
            child = self._ensure_child()
            try:
                return child.call(job, payload)
            except SandboxError:
                if not child.alive:
                    self._child = None
                raise

    def decide(self, candles: list, *, params: dict | None = None, position: dict | None = None) -> dict:
        """The decision at the close of the last candle (jobs.evaluate_last), checked on this side too."""
        payload = {"candles": candles, "params": params or {}, "position": position}
        return check_decision(self.call(EVALUATE_LAST, payload))

    def close(self) -> None:
        with self._lock:
            if self._child is not None:
                self._child.kill()
                self._child = None

    def __enter__(self) -> WarmSandbox:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
