"""Where a chaos trial's recovery time goes: each phase timed from the kill -9, on one poll of the stack every
POLL_S (supervisord through its socket, no process started per poll).

- detected: supervisord saw the exit (the program's pid changed; for PostgreSQL and Redis, whose server was
  killed under the `aristobot services` wrapper, the wrapper noticed and exited);
- restarted: supervisord runs a new process in its place;
- alive: that process does its job again (its liveness report carries its pid, or for the web app the pid of
  one of its gunicorn workers: the killed master's worker may still answer for a moment; the simulator answers
  a ping; the server answers a query);
- healthy: /healthz is 200 with every process alive;
- acked: a probe order placed then is acknowledged by the venue (the pipelines flow again).

`start_cpu_s` is the CPU the new process used from its start to `alive` (with the children it waited for):
the cost of its start, which a loaded machine stretches into wall time."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

from core.infra.bus import LIVENESS, get_redis
from core.infra.db import ping_database
from core.percentiles import percentile

PHASES = ("detected", "restarted", "alive", "healthy", "acked")
# Processes whose liveness report carries the supervised pid or its child's (the others: see `alive`).
REPORTS_LIVENESS = frozenset({"worker", "maintenance", "beat", "feeds", "arb", "web"})
POLL_S = 0.25
RECOVERY_TIMEOUT_S = 240.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Trial:
    victim: str
    load_1m: float
    killed_at: float  # wall clock, to read beside supervisord's log
    seconds: dict[str, float] = field(default_factory=dict)  # phase -> seconds since the kill
    start_cpu_s: float | None = None

    @property
    def recovery_s(self) -> float | None:
        return self.seconds.get("acked")

    def line(self) -> str:
        return json.dumps(
            {
                "victim": self.victim,
                "load_1m": self.load_1m,
                "killed_at": datetime.fromtimestamp(self.killed_at, UTC).isoformat(timespec="milliseconds"),
                **{phase: round(self.seconds[phase], 2) for phase in PHASES if phase in self.seconds},
                "start_cpu_s": self.start_cpu_s,
            }
        )


def load_1m() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def process_cpu_s(pid: int) -> float | None:
    """utime + stime of the process and of the children it waited for (a shell's `db wait`), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return round(sum(int(value) for value in fields[11:15]) / CLOCK_TICKS, 2)


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return 0


def _reports_pid(name: str, pid: int) -> bool:
    try:
        raw = get_redis().hget(LIVENESS, name)
    except Exception:  # noqa: BLE001 - Redis still coming back
        return False
    reporter = json.loads(str(raw)).get("pid", 0) if raw else 0
    return reporter == pid or _parent(reporter) == pid


def _answers(url: str) -> bool:
    """Any HTTP answer: the process serves again (/healthz may still be 503 while others recover)."""
    try:
        requests.get(url, timeout=3)
    except requests.RequestException:
        return False
    return True


def _server_answers(victim: str) -> bool:
    try:
        if victim == "redis":
            return bool(get_redis().ping())
        ping_database()
        return True
    except Exception:  # noqa: BLE001 - still coming back
        return False


def alive(victim: str, pid: int, sim_url: str) -> bool:
    if victim in REPORTS_LIVENESS:
        return _reports_pid(victim, pid)
    if victim == "sim":
        return _answers(f"{sim_url.rstrip('/')}/api/v3/ping")
    return _server_answers(victim)


def healthy(web_url: str) -> bool:
    try:
        answer = requests.get(f"{web_url}/healthz", timeout=3)
        return answer.status_code == 200 and all(p["ok"] for p in answer.json()["processes"].values())
    except (requests.RequestException, ValueError, KeyError):
        return False


@dataclass(frozen=True)
class Probes:
    """How the trial reads the stack: the supervised pid of a program (0 while it is down), whether the
    process does its job again, /healthz, and a probe order (place one; is it acknowledged?)."""

    pid: Callable[[str], int]
    alive: Callable[[str, int], bool]
    healthy: Callable[[], bool]
    place: Callable[[], int | None]
    acked: Callable[[int], bool]


def watch(trial: Trial, old_pid: int, killed_at: float, probes: Probes, timeout: float = RECOVERY_TIMEOUT_S) -> Trial:
    """Fill in the trial's phases, in order, until the probe order is acknowledged or the timeout passes."""
    seen = trial.seconds
    probe = None
    while "acked" not in seen and time.monotonic() < killed_at + timeout:

        def mark(phase: str) -> None:
            seen.setdefault(phase, time.monotonic() - killed_at)

        try:
            pid = probes.pid(trial.victim)
        except OSError:
            pid = old_pid  # supervisord busy: ask again
        if pid != old_pid:
            mark("detected")
        if pid and pid != old_pid:
            mark("restarted")
            if "alive" not in seen and probes.alive(trial.victim, pid):
                mark("alive")
                trial.start_cpu_s = process_cpu_s(pid)
            if "alive" in seen and "healthy" not in seen and probes.healthy():
                mark("healthy")
            if "healthy" in seen:
                probe = probe or probes.place()
                if probe and probes.acked(probe):
                    mark("acked")
        time.sleep(POLL_S)
    return trial


def phase_summary(trials: list[Trial], quantile: float) -> dict[str, float | None]:
    """Per phase, the given percentile of its seconds since the kill over the trials that reached it."""
    return {
        phase: rounded(percentile([t.seconds[phase] for t in trials if phase in t.seconds], quantile))
        for phase in PHASES
    }


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
