"""`aristobot run` (what `make run` calls): set up a fresh machine, then start every process via honcho."""

from __future__ import annotations

import logging
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from core.infra.config import ROOT, Settings, get_settings
from core.infra.embedded_services import ensure_port_free, private_dir, private_file, wait_for_port
from core.infra.security import generate_fernet_key

log = logging.getLogger(__name__)


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


def procfile_names(root: Path = ROOT) -> list[str]:
    return [
        line.split(":", 1)[0].strip()
        for line in (root / "Procfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def selected_processes(settings: Settings) -> list[str]:
    names = procfile_names(settings.root)
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


def process_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env["FLOWER_PORT"] = str(settings.file.flower.port)
    env.setdefault("ARISTOBOT_HOME", str(settings.root))
    env["ARISTOBOT_VAR"] = str(settings.var_dir)
    return env


def start_honcho(settings: Settings, processes: list[str]) -> subprocess.Popen:
    # -e: honcho would otherwise load ./.env into every process, whatever ARISTOBOT_ENV_FILE says.
    command = [
        sys.executable,
        "-m",
        "honcho",
        "-f",
        str(settings.root / "Procfile"),
        "-d",
        str(settings.root),
        "-e",
        str(settings.env_path),
        "start",
        *processes,
    ]
    return subprocess.Popen(command, env=process_environment(settings), cwd=settings.root)


def prepare_data(settings: Settings, timeout: float = 90.0) -> list[str]:
    """Migrate, create the demo trader and its broker on the simulator. Returns lines to print."""
    from core.bootstrap import ensure_demo_account
    from core.infra.db import wait_for_database
    from core.infra.migrate import upgrade_database

    wait_for_database(timeout=timeout, process="run", server_only=True)
    upgrade_database()
    # On a terminal the demo password is shown once; captured output (a file, a journal) never gets it.
    return ensure_demo_account(settings, show_password=sys.stdout.isatty())


def run() -> int:
    created, added = ensure_env_file()
    settings = get_settings()
    processes = selected_processes(settings)
    for name, port in required_ports(settings, processes).items():
        ensure_port_free(port, what=name)
    # Only this account enters var/ (when running as root, `services postgres` lets the `pgserver` system
    # user cross it too: core/infra/embedded_pg.py).
    private_dir(settings.var_dir)
    honcho = start_honcho(settings, processes)
    try:
        from core.infra.bus import EXPECTED_PROCESSES, wait_for_redis

        client = wait_for_redis()
        lines = prepare_data(settings)
        client.delete(EXPECTED_PROCESSES)
        client.sadd(EXPECTED_PROCESSES, *[p for p in processes if p not in ("postgres", "redis")])
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
        honcho.terminate()
        honcho.wait(timeout=30)
        return 1
    try:
        return honcho.wait()
    except KeyboardInterrupt:
        # The terminal sent SIGINT to honcho too; give it time to stop every process cleanly.
        deadline = time.monotonic() + 30
        while honcho.poll() is None and time.monotonic() < deadline:
            try:
                honcho.wait(timeout=1)
            except (KeyboardInterrupt, subprocess.TimeoutExpired):
                continue
        return 0
