"""Helpers shared by tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def remember_secret(value: str) -> str:
    """Record a secret the suite used; the secrets audit (tests/secrets_audit.py) fails the run if it ever
    appears in a log."""
    with open(Path(os.environ["ARISTOBOT_TEST_LOG_DIR"]) / "secrets.txt", "a") as handle:
        handle.write(value + "\n")
    return value


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert match, "no CSRF token in page"
    return match.group(1)


def stop_process(process, timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited in time (a worker busy with a long task)."""
    import subprocess

    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
