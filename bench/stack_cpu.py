"""The CPU the running stack spends, read from /proc: every process of the `make run` stack, by role.

A process belongs to the stack when its environment carries the stack's `ARISTOBOT_VAR` (every process the
Procfile starts inherits it, and so do Celery's pool processes), or when one of its ancestors does: a
PostgreSQL backend overwrites its environment with its process title ("postgres: aristobot ... idle"), so
the marker is not readable there, and its CPU would only show once the postmaster reaped it.
Its CPU is user + system time, plus the time of children it has reaped, so a PostgreSQL backend or pool
process that ends during the measurement is still counted, in its parent's share.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# The first pattern found in a process' command line names its role; the order matters (a Celery worker's
# line holds "celery" and its node name).
ROLES = (
    ("postgres", "postgres"),
    ("redis-server", "redis"),
    ("worker@", "worker"),
    ("maintenance@", "maintenance"),
    ("bots@", "bots"),
    ("backtester@", "backtester"),
    (" beat", "beat"),
    ("flower", "flower"),
    ("-m webapp", "web"),
    ("-m feeds", "feeds"),
    ("-m arb", "arb"),
    ("-m sim.perp", "perpsim"),
    ("aristobot sim", "sim"),
    ("-m sim.spot", "sim"),
)


@dataclass(frozen=True)
class ProcessCpu:
    pid: int
    role: str
    cpu_ms: float


def role_of(cmdline: str) -> str:
    return next((role for pattern, role in ROLES if pattern in cmdline), "other")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:  # the process ended, or is not ours to read
        return None


def cpu_ms_of(stat: bytes) -> float:
    """utime + stime + cutime + cstime of a /proc/PID/stat line, in milliseconds."""
    fields = stat[stat.rindex(b")") + 2 :].split()  # the command name may hold spaces and parentheses
    ticks = sum(int(value) for value in fields[11:15])  # fields 14-17 of proc(5), counted from the state
    return ticks * 1000 / TICKS_PER_S


def _parent_of(stat: bytes) -> int:
    return int(stat[stat.rindex(b")") + 2 :].split()[1])  # field 4 of proc(5), counted from the state


def stack_processes(var_dir: str, exclude: set[int] | None = None) -> Iterator[ProcessCpu]:
    marker = f"ARISTOBOT_VAR={var_dir}".encode()
    exclude = exclude or set()
    seen: dict[int, tuple[bytes, bytes, bool]] = {}  # pid -> (cmdline, stat, carries the marker)
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        environ, cmdline, stat = _read(entry / "environ"), _read(entry / "cmdline"), _read(entry / "stat")
        if cmdline is not None and stat is not None:
            seen[int(entry.name)] = (cmdline, stat, environ is not None and marker in environ.split(b"\0"))
    in_stack: dict[int, bool] = {}

    def belongs(pid: int) -> bool:
        chain = []
        while pid in seen and pid not in in_stack and not seen[pid][2]:
            chain.append(pid)
            pid = _parent_of(seen[pid][1])
        verdict = in_stack.get(pid, pid in seen and seen[pid][2])
        for member in chain:
            in_stack[member] = verdict
        return verdict

    for pid, (cmdline, stat, _) in seen.items():
        if pid in exclude or not belongs(pid):
            continue
        yield ProcessCpu(pid, role_of(cmdline.replace(b"\0", b" ").decode(errors="replace")), cpu_ms_of(stat))


def snapshot(var_dir: str) -> dict[int, ProcessCpu]:
    """The stack's processes now, but not this one (the bench may share the stack's environment)."""
    return {process.pid: process for process in stack_processes(var_dir, exclude={os.getpid()})}


def spent_by_role(before: dict[int, ProcessCpu], after: dict[int, ProcessCpu]) -> dict[str, float]:
    """CPU milliseconds each role spent between two snapshots (a process born in between counts whole)."""
    spent: dict[str, float] = {}
    for pid, process in after.items():
        earlier = before.get(pid)
        start = earlier.cpu_ms if earlier is not None and earlier.role == process.role else 0.0
        spent[process.role] = spent.get(process.role, 0.0) + max(process.cpu_ms - start, 0.0)
    return spent


def above_idle(
    spent: dict[str, float], idle: dict[str, float], idle_seconds: float, seconds: float
) -> dict[str, float]:
    """What each role spent over `seconds` beyond its idle rate (`idle`: spent over `idle_seconds` of a
    quiet stack): the work a run caused, without the heartbeats, polling and reconciliation that run anyway."""
    return {role: max(ms - idle.get(role, 0.0) / idle_seconds * seconds, 0.0) for role, ms in spent.items()}
