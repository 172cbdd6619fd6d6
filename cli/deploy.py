"""`aristobot deploy systemd`: systemd units for running on a server (README "Running on a server")."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click


@click.group("deploy")
def deploy_group() -> None:
    """Install Aristobot as a service on a server."""


@deploy_group.command("systemd")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), help="Default: var/systemd.")
@click.option("--user", default=getpass.getuser, show_default="the current user", help="The account the units run as.")
def deploy_systemd(directory: Path | None, user: str) -> None:
    """Write one systemd unit per Procfile process (restart on failure, ordered start and stop) and a target."""
    from core.infra.config import get_settings
    from core.infra.embedded_services import private_dir, private_file
    from core.processes import procfile_path, selected_processes, unit_environment
    from core.supervision.config import programs, read_procfile
    from core.supervision.systemd import TARGET, unit_files

    settings = get_settings()
    target = private_dir(directory or settings.var_dir / "systemd")
    progs = programs(read_procfile(procfile_path(settings.root)), selected_processes(settings))
    # The service manager's PATH, not this shell's: the virtualenv first, then the system's directories.
    environment = unit_environment(settings) | {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"}
    files = unit_files(progs, settings.root, settings.env_path, environment, user)
    for name, text in files.items():
        private_file(target / name, text)
    click.echo(f"Wrote {len(files)} units to {target}. Install and start them (as root):")
    click.echo(f"  cp {target}/aristobot* /etc/systemd/system/ && chmod 644 /etc/systemd/system/aristobot*")
    click.echo(f"  systemctl daemon-reload && systemctl enable --now {TARGET}")
