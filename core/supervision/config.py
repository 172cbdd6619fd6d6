"""The supervisord configuration of `aristobot run`, generated from the Procfile (the one list of processes).

Stopping is ordered: supervisord stops programs one priority at a time, the highest first, so the arb engine
stops first while its venues and the infrastructure are still up; those stop last. Each program gets the time
its clean exit needs (stopwaitsecs) before supervisord would SIGKILL it."""

from __future__ import annotations

import getpass
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from honcho.environ import parse_procfile

# Tiers, in start order; they stop in the reverse order, one tier at a time and every process of a tier at
# once (a supervisord group each). A process the Procfile adds joins "services".
TIERS = {"infrastructure": 10, "venues": 100, "services": 500, "trading": 900}
TIER_OF = {
    "postgres": "infrastructure",
    "redis": "infrastructure",
    "sim": "venues",
    "perpsim": "venues",
    "arb": "trading",
}
DEFAULT_TIER = "services"
# The tiers that use the database, in the order they stop (the arb engine first, with its clean exit). They do
# not start with supervisord: `aristobot run` starts them, in the reverse order, once the database is migrated
# (core/processes.py), so a process starts Python once and never waits for the schema; a restarted one finds
# it current. Infrastructure and the simulators start at once.
APP_TIERS = ("trading", "services")
# Seconds a program may take to exit after its stop signal: the arb engine finishes in-flight legs (up to
# 30 s) and cancels resting orders; Celery workers finish their running tasks (warm shutdown).
STOP_WAIT_S = {"arb": 120, "worker": 60, "maintenance": 60, "backtester": 60, "postgres": 60, "redis": 30, "bots": 60}
DEFAULT_STOP_WAIT_S = 30
# A program that exits within START_S of its start failed to start; after START_RETRIES such failures in
# a row (supervisord waits 1, 2, 3... s between them) it is FATAL: a crash loop, reported, not retried.
START_S = 5
START_RETRIES = 3


class ProcfileError(ValueError):
    """The Procfile cannot become a supervisord configuration."""


@dataclass(frozen=True)
class Program:
    name: str
    command: str
    tier: str
    stop_wait_s: int


def read_procfile(path: Path) -> dict[str, str]:
    try:
        processes = parse_procfile(path.read_text()).processes
    except AssertionError as exc:  # honcho's message: process names must be unique
        raise ProcfileError(f"{path}: {exc}") from None
    if not processes:
        raise ProcfileError(f"{path}: no process (lines are `name: command`)")
    return dict(processes)


def programs(procfile: dict[str, str], selected: list[str]) -> list[Program]:
    unknown = [name for name in selected if name not in procfile]
    if unknown:
        raise ProcfileError(f"not in the Procfile: {', '.join(unknown)}")
    return [
        Program(
            name=name,
            command=procfile[name],
            tier=TIER_OF.get(name, DEFAULT_TIER),
            stop_wait_s=STOP_WAIT_S.get(name, DEFAULT_STOP_WAIT_S),
        )
        for name in selected
    ]


SHELL_SYNTAX = ("&", "|", ";", "(", "{", "`", "$(", "<", ">", "\n")


def shell_command(command: str) -> str:
    """The Procfile command for `sh -c`. A simple command replaces the shell (exec): the supervised pid is then
    the process itself, so a kill -9 of it leaves no orphan holding its port while a new one starts."""
    if command.startswith("exec ") or any(token in command for token in SHELL_SYNTAX):
        return command
    return f"exec {command}"


def _value(text: str) -> str:
    """A value as supervisord reads it: `%` starts its own %(name)s expansions."""
    return text.replace("%", "%%")


def _section(title: str, options: dict[str, object]) -> str:
    lines = [f"[{title}]", *(f"{key}={_value(str(value))}" for key, value in options.items())]
    return "\n".join(lines) + "\n"


def render(progs: list[Program], root: Path, var_dir: Path, python: str = sys.executable) -> str:
    """supervisord.conf text. No secret in it: the programs inherit supervisord's environment."""
    logs = var_dir / "logs"
    console = {"stdout_logfile": "/dev/stdout", "stdout_logfile_maxbytes": 0, "redirect_stderr": "true"}
    sections = [
        _section(
            "supervisord",
            {
                "nodaemon": "true",
                "logfile": logs / "supervisord.log",
                "logfile_maxbytes": "10MB",
                "logfile_backups": 3,
                "pidfile": var_dir / "supervisord.pid",
                "childlogdir": logs,
                "directory": root,
                # Under root, say so (supervisord warns otherwise); it never switches user by itself.
                **({"user": getpass.getuser()} if os.getuid() == 0 else {}),
            },
        ),
        _section("unix_http_server", {"file": var_dir / "supervisor.sock", "chmod": "0700"}),
        _section(
            "rpcinterface:supervisor",
            {"supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"},
        ),
        _section("supervisorctl", {"serverurl": f"unix://{var_dir / 'supervisor.sock'}"}),
        _section(
            "eventlistener:supervision",
            {
                "command": shlex.join(
                    [
                        python,
                        "-m",
                        "core.supervision.listener",
                        str(logs / "supervisord.log"),
                        str(var_dir / "supervision.json"),
                    ]
                ),
                "directory": root,
                "events": "PROCESS_STATE",
                "buffer_size": 1000,
                "autorestart": "true",
                "stderr_logfile": "/dev/stdout",
                "stderr_logfile_maxbytes": 0,
            },
        ),
    ]
    for prog in progs:
        options: dict[str, object] = {
            "command": shlex.join(["/bin/sh", "-c", shell_command(prog.command)]),
            "directory": root,
            "priority": TIERS[prog.tier],
            "autostart": "false" if prog.tier in APP_TIERS else "true",
            "autorestart": "true",
            "startsecs": START_S,
            "startretries": START_RETRIES,
            "stopsignal": "TERM",
            "stopwaitsecs": prog.stop_wait_s,
            # The signal reaches the whole group (the shell while it waits for the database, Celery's pool),
            # except under the embedded servers' wrappers: they forward it, and Redis takes a second signal
            # during its shutdown as "exit now" (status 1, its last second of writes unsynced).
            "stopasgroup": "false" if prog.tier == "infrastructure" else "true",
            "killasgroup": "true",
            **console,
        }
        sections.append(_section(f"program:{prog.name}", options))
    for tier, priority in TIERS.items():
        members = [prog.name for prog in progs if prog.tier == tier]
        if members:
            sections.append(_section(f"group:{tier}", {"programs": ",".join(members), "priority": priority}))
    return "\n".join(sections)
