"""`aristobot deploy systemd`: one systemd unit per Procfile process and a target, for a server.

The same tiers as under `aristobot run` (core/supervision/config.py): a unit starts after the tiers below
it and systemd stops in the reverse order, so the arb engine stops while its venues and the infrastructure
are still up. Secrets stay in the .env file (EnvironmentFile=), never in a unit."""

from __future__ import annotations

from pathlib import Path

from core.supervision.config import TIERS, Program, shell_command

TARGET = "aristobot.target"
SETUP = "aristobot-setup.service"
RESTART_S = 2
# More than START_LIMIT_BURST starts within the interval: systemd gives up (the unit is `failed`, a crash loop
# that `systemctl --failed` and the journal report) instead of restarting forever.
START_LIMIT_INTERVAL_S = 300
START_LIMIT_BURST = 5


def unit_name(process: str) -> str:
    return f"aristobot-{process}.service"


def _exec(command: str) -> str:
    """A Procfile command as ExecStart= runs it: systemd expands `%` specifiers and `$` itself first."""
    escaped = command.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'/bin/sh -c "{escaped}"'


def unit_files(
    progs: list[Program], root: Path, env_path: Path, environment: dict[str, str], user: str
) -> dict[str, str]:
    """File name -> text for every unit, the setup unit (migrations) and the target."""
    infra = [unit_name(p.name) for p in progs if p.tier == "infrastructure"]
    env_lines = [f'Environment="{key}={value}"' for key, value in sorted(environment.items())]
    common = [f"User={user}", f"WorkingDirectory={root}", f"EnvironmentFile={env_path}", *env_lines]
    files = {
        SETUP: "\n".join(
            [
                "[Unit]",
                "Description=Aristobot: migrate the database before the processes start",
                f"PartOf={TARGET}",
                *([f"After={' '.join(infra)}", f"Requires={' '.join(infra)}"] if infra else []),
                "",
                "[Service]",
                "Type=oneshot",
                "RemainAfterExit=yes",
                *common,
                _exec_line("aristobot db upgrade"),
                "",
                "[Install]",
                f"WantedBy={TARGET}",
                "",
            ]
        )
    }
    for prog in progs:
        below = [unit_name(p.name) for p in progs if TIERS[p.tier] < TIERS[prog.tier]]
        after = below + ([SETUP] if prog.tier != "infrastructure" else [])
        files[unit_name(prog.name)] = "\n".join(
            [
                "[Unit]",
                f"Description=Aristobot {prog.name}",
                f"PartOf={TARGET}",
                *([f"After={' '.join(after)}"] if after else []),
                *([f"Requires={' '.join(infra)}"] if infra and prog.tier != "infrastructure" else []),
                f"StartLimitIntervalSec={START_LIMIT_INTERVAL_S}",
                f"StartLimitBurst={START_LIMIT_BURST}",
                "",
                "[Service]",
                *common,
                _exec_line(shell_command(prog.command)),
                "Restart=on-failure",
                f"RestartSec={RESTART_S}",
                # Its clean exit's time (the arb engine's orders, Celery's running tasks) before any SIGKILL.
                f"TimeoutStopSec={prog.stop_wait_s}",
                "",
                "[Install]",
                f"WantedBy={TARGET}",
                "",
            ]
        )
    files[TARGET] = "\n".join(
        [
            "[Unit]",
            "Description=Aristobot (every process)",
            f"Wants={' '.join([SETUP, *(unit_name(p.name) for p in progs)])}",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )
    return files


def _exec_line(command: str) -> str:
    return f"ExecStart={_exec(command)}"
