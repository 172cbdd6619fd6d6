"""`aristobot run` (what `make run` calls): set up a fresh machine, then start every Procfile process under
supervisord (core/supervision/config.py): a process that dies is restarted, Ctrl+C stops all in order."""

from __future__ import annotations

import logging
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from core.infra.config import ROOT, Settings, get_settings
from core.infra.embedded_services import ensure_port_free, private_dir, private_file, wait_for_port
from core.infra.security import generate_fernet_key
from core.supervision.config import programs, read_procfile, render

log = logging.getLogger(__name__)


SETUP_TIMEOUT_S = 180.0


def _token() -> str:
    return secrets.token_urlsafe(32)


# Keys `make run` generates into .env: at first start, and later for keys a newer release added.
GENERATED_KEYS = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(48),
    "FERNET_KEYS": generate_fernet_key,
    "POSTGRES_APP_PASSWORD": _token,
    "REDIS_PASSWORD": _token,
    "FLOWER_BASIC_AUTH": lambda: f"admin:{_token()}",
}


def _literal(value: str) -> Callable[[re.Match[str]], str]:
    """A re.sub replacement that is `value` as is (no backslash or group reference expanded)."""
    return lambda _match: value


def ensure_env_file(root: Path = ROOT) -> tuple[bool, list[str]]:
    """Write .env (0600) from .env.example with fresh random keys, or add the generated keys it lacks.
    Returns (created, names of the keys added to an existing file)."""
    env_path = Path(os.environ.get("ARISTOBOT_ENV_FILE", root / ".env"))
    created = not env_path.exists()
    text = (root / ".env.example").read_text() if created else env_path.read_text()
    added = []
    for name, generate in GENERATED_KEYS.items():
        line = re.compile(rf"(?m)^{name}=(.*)$")
        found = line.search(text)
        if found and found.group(1).strip() and not created:
            continue
        value = f"{name}={generate()}"
        text = line.sub(_literal(value), text) if found else f"{text.rstrip()}\n{value}\n"
        added.append(name)
    if added:
        private_file(env_path, text)
    env_path.chmod(0o600)
    return created, [] if created else added


def procfile_path(root: Path = ROOT) -> Path:
    """The one list of processes (ARISTOBOT_PROCFILE: another list, e.g. a test's with one more process)."""
    return Path(os.environ.get("ARISTOBOT_PROCFILE", root / "Procfile"))


def selected_processes(settings: Settings) -> list[str]:
    names = list(read_procfile(procfile_path(settings.root)))
    skip = {"postgres"} if not settings.embedded_postgres else set()
    skip |= {"redis"} if not settings.embedded_redis else set()
    return [name for name in names if name not in skip]


def required_ports(settings: Settings, processes: list[str]) -> dict[str, int]:
    f = settings.file
    ports = {
        "web": f.web.port,
        "flower": f.flower.port,
        "sim": f.sim.port,
        "postgres": f.embedded.postgres_port,
        "redis": f.embedded.redis_port,
    }
    checks = {name: port for name, port in ports.items() if name in processes}
    if "perpsim" in processes:  # the arb engine's Vest and Paradex simulator faces
        perp = f.arb.get("sim", {})
        checks["perpsim (Vest face)"] = int(perp.get("vest_port", 8901))
        checks["perpsim (Paradex face)"] = int(perp.get("paradex_port", 8902))
    return checks


def unit_environment(settings: Settings) -> dict[str, str]:
    """What every process needs besides .env and the machine's own variables (no secret among them)."""
    bin_dir = str(Path(sys.executable).parent)
    chosen = {name: os.environ[name] for name in ("ARISTOBOT_CONFIG", "ARISTOBOT_ENV_FILE") if name in os.environ}
    return chosen | {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONUNBUFFERED": "1",
        "FLOWER_PORT": str(settings.file.flower.port),
        "ARISTOBOT_HOME": os.environ.get("ARISTOBOT_HOME", str(settings.root)),
        "ARISTOBOT_VAR": str(settings.var_dir),
    }


def process_environment(settings: Settings) -> dict[str, str]:
    """supervisord's environment, which every process inherits: .env, then the real environment over it
    (as Settings reads them), so no secret has to be written into the supervisord configuration."""
    from dotenv import dotenv_values

    env = {k: v for k, v in dotenv_values(settings.env_path).items() if v} if settings.env_path.exists() else {}
    return env | dict(os.environ) | unit_environment(settings)


def start_supervisor(settings: Settings, processes: list[str]) -> subprocess.Popen:
    """Write var/supervisord.conf (0600) from the Procfile and run supervisord in the foreground."""
    progs = programs(read_procfile(procfile_path(settings.root)), processes)
    private_dir(settings.var_dir / "logs")
    config = settings.var_dir / "supervisord.conf"
    private_file(config, render(progs, settings.root, settings.var_dir))
    (settings.var_dir / "supervision.json").unlink(missing_ok=True)  # this run's restarts only
    command = [sys.executable, "-m", "supervisor.supervisord", "--nodaemon", "--configuration", str(config)]
    return subprocess.Popen(command, env=process_environment(settings), cwd=settings.root)


def wait_for_stop(supervisor: subprocess.Popen) -> int:
    """Wait while supervisord stops every process in order (each within its stopwaitsecs): a second Ctrl+C
    does not cut that short."""
    while True:
        try:
            supervisor.wait()
            return 0
        except KeyboardInterrupt:
            continue


def prepare_data(settings: Settings, timeout: float = 90.0) -> list[str]:
    """Migrate, create the demo trader and its broker on the simulator. Returns lines to print."""
    from core.bootstrap import ensure_demo_account
    from core.infra.db import wait_for_database
    from core.infra.migrate import upgrade_database

    wait_for_database(timeout=timeout, process="run", server_only=True)
    upgrade_database()
    # On a terminal the demo password is shown once; captured output (a file, a journal) never gets it.
    return ensure_demo_account(settings, show_password=sys.stdout.isatty())


def start_app_tiers(settings: Settings) -> None:
    """Start the processes that use the database, now that it is migrated (they wait for nothing themselves)."""
    from core.supervision.control import Supervisor

    supervisor = Supervisor.running(settings.var_dir)
    if supervisor is None:
        raise RuntimeError(f"supervisord does not answer on {settings.var_dir / 'supervisor.sock'}")
    supervisor.start_app()


def run() -> int:
    created, added = ensure_env_file()
    settings = get_settings()
    processes = selected_processes(settings)
    for name, port in required_ports(settings, processes).items():
        ensure_port_free(port, what=name)
    # Only this account enters var/ (when running as root, `services postgres` lets the `pgserver` system
    # user cross it too: core/infra/embedded_pg.py).
    private_dir(settings.var_dir)
    supervisor = start_supervisor(settings, processes)
    # SIGTERM (systemd, `kill`) stops everything in the same order as Ctrl+C.
    signal.signal(signal.SIGTERM, lambda *_: supervisor.send_signal(signal.SIGTERM))
    try:
        from core.infra.bus import EXPECTED_PROCESSES, wait_for_redis

        # Every process starts at once: on a busy small machine the infrastructure can take minutes.
        client = wait_for_redis(timeout=SETUP_TIMEOUT_S)
        lines = prepare_data(settings, timeout=SETUP_TIMEOUT_S)
        client.delete(EXPECTED_PROCESSES)
        client.sadd(EXPECTED_PROCESSES, *[p for p in processes if p not in ("postgres", "redis")])
        start_app_tiers(settings)
        wait_for_port(settings.file.web.port, timeout=30)
        banner = [
            "",
            "=" * 72,
            f"Aristobot is running: http://{settings.file.web.host}:{settings.file.web.port}/",
            f"Celery Flower:       http://127.0.0.1:{settings.file.flower.port}/ "
            f"(user and password: FLOWER_BASIC_AUTH in {settings.env_path})",
            *([f"Created {settings.env_path.name} with fresh random keys."] if created else []),
            *([f"Added {', '.join(added)} to {settings.env_path.name}."] if added else []),
            *lines,
            "Press Ctrl+C to stop everything.",
            "=" * 72,
            "",
        ]
        print("\n".join(banner), flush=True)
    except Exception as exc:  # noqa: BLE001 - any set-up failure stops everything with one clear line
        print(f"aristobot run: set-up failed: {exc}", file=sys.stderr, flush=True)
        supervisor.terminate()
        wait_for_stop(supervisor)
        return 1
    try:
        return supervisor.wait()
    except KeyboardInterrupt:
        # From a terminal, supervisord got the SIGINT too (the processes have their own process groups); from
        # `kill -INT` of this process alone, it did not: tell it (a repeated exit request changes nothing).
        supervisor.send_signal(signal.SIGTERM)
        return wait_for_stop(supervisor)
