"""What supervision knows of each process: state, restarts, the last exit and its reason, crash loop.

The event listener writes it to a JSON file in var/ (not Redis: Redis is one of the supervised processes)
and the admin System page reads it."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# Besides FATAL (supervisord gave up), this many unexpected exits within the window is a crash loop too:
# a process that runs a little longer than the start window before it crashes is restarted forever.
CRASH_LOOP_EXITS = 5
CRASH_LOOP_WINDOW_S = 300.0


@dataclass
class ProcessRecord:
    state: str = "STARTING"
    restarts: int = 0
    last_exit_code: int | None = None
    last_exit_reason: str = ""
    last_exit_at: float | None = None
    fatal: bool = False
    recent_exits: list[float] = field(default_factory=list)

    @property
    def crash_loop(self) -> bool:
        return self.fatal or len(self.recent_exits) >= CRASH_LOOP_EXITS

    def exited(self, code: int | None, reason: str, now: float) -> None:
        self.last_exit_code, self.last_exit_reason, self.last_exit_at = code, reason, now
        self.recent_exits = [t for t in self.recent_exits if now - t < CRASH_LOOP_WINDOW_S] + [now]


def load(path: Path) -> dict[str, ProcessRecord]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    fields = set(ProcessRecord.__dataclass_fields__)
    return {name: ProcessRecord(**{k: v for k, v in entry.items() if k in fields}) for name, entry in raw.items()}


def save(path: Path, records: dict[str, ProcessRecord]) -> None:
    """Replace the file atomically (a reader never sees half of it), private to this account."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump({name: asdict(record) for name, record in sorted(records.items())}, handle)
    os.replace(tmp, path)


def read_supervision(var_dir: Path) -> dict[str, dict]:
    """For the System page: per process its state, restarts, last exit and crash-loop flag ({} when
    the platform does not run under `aristobot run`'s supervisor, e.g. under systemd)."""
    return {
        name: asdict(record)
        | {
            "crash_loop": record.crash_loop,
            "last_exit_utc": datetime.fromtimestamp(record.last_exit_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            if record.last_exit_at
            else "",
        }
        for name, record in load(var_dir / "supervision.json").items()
    }
