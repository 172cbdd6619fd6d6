"""Journey: `make run` on a fresh machine brings every process up on embedded Postgres and Redis, a
trader logs in over HTTP, Ctrl+C stops everything cleanly, and a second start resumes the same data.
Least privilege along the way: secrets files private, no process but the database's own holds the
superuser password, the demo password reaches no log, and Flower asks for a login."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import ROOT, process_env
from tests.support import csrf_token_from, free_port, remember_secret

pytestmark = pytest.mark.slow


def _fresh_install(tmp_path: Path) -> tuple[dict, dict]:
    ports = {name: free_port() for name in ("web", "flower", "sim", "postgres", "redis", "vest", "paradex")}
    arb = yaml.safe_load((ROOT / "config.yaml").read_text())["arb"]
    arb["sim"].update(vest_port=ports["vest"], paradex_port=ports["paradex"])
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "web": {"port": ports["web"]},
                "flower": {"port": ports["flower"]},
                "sim": {"port": ports["sim"]},
                "embedded": {"postgres_port": ports["postgres"], "redis_port": ports["redis"]},
                "arb": arb,
            }
        )
    )
    env = process_env(
        ARISTOBOT_CONFIG=str(tmp_path / "config.yaml"),
        ARISTOBOT_VAR=str(tmp_path / "var"),
        ARISTOBOT_ENV_FILE=str(tmp_path / ".env"),
    )
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "FERNET_KEYS"):
        env.pop(name)
    return ports, env


def _start(env: dict, log_path: Path) -> tuple[subprocess.Popen, str]:
    log = open(log_path, "a")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,
    )
    banner = []
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        log.write(line)  # as an operator's log file would: the demo password must not be in it
        banner.append(line)
        if line.startswith("Press Ctrl+C"):
            break
    text = "".join(banner)
    assert "Aristobot is running" in text, f"no banner; see {log_path}"
    return process, text


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _environments_of_run(var_dir: Path) -> dict[str, bytes]:
    """Command line -> environment of every process of this run (they all carry its ARISTOBOT_VAR)."""
    marker = f"ARISTOBOT_VAR={var_dir}\0".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes() if entry.name.isdigit() else b""
            if marker in environ:
                found[(entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()] = environ
        except OSError:
            continue
    return found


def _files_under(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


def _wait_healthy(port: int) -> dict:
    deadline = time.monotonic() + 90
    body = {}
    while time.monotonic() < deadline:
        try:
            response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            body = response.json()
            if response.status_code == 200 and all(p["ok"] for p in body["processes"].values()):
                return body
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError(f"never healthy: {body}")


def _login(port: int, username: str, password: str) -> requests.Response:
    session = requests.Session()
    base = f"http://127.0.0.1:{port}"
    token = csrf_token_from(session.get(f"{base}/login", timeout=5).text)
    return session.post(
        f"{base}/login", data={"username": username, "password": password, "csrf_token": token}, timeout=5
    )


def _stop(process: subprocess.Popen) -> int:
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl+C in the terminal does
    return process.wait(timeout=60)


def _port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_make_run_fresh_machine_login_stop_and_resume(server_home):
    home = server_home
    ports, env = _fresh_install(home)
    log_path = Path(os.environ["ARISTOBOT_TEST_LOG_DIR"]) / "make-run.log"
    process, banner = _start(env, log_path)
    var_dir = home / "var"
    try:
        # Not a terminal: the demo password goes to a private file, never to the captured output.
        assert f"Demo login: user 'demo', password in {var_dir / 'demo-password'}" in banner
        password = remember_secret((var_dir / "demo-password").read_text().strip())
        assert (home / ".env").exists() and "fresh random keys" in banner
        health = _wait_healthy(ports["web"])
        assert {
            "web",
            "worker",
            "maintenance",
            "backtester",
            "beat",
            "flower",
            "sim",
            "feeds",
            "perpsim",
            "arb",
        } <= set(health["processes"])
        assert "Demo broker: 'Simulator' with 10000 USDT" in banner
        assert health["postgres"]["ok"] and health["redis"]["ok"]
        response = _login(ports["web"], "demo", password)
        assert response.status_code == 200 and "Welcome, demo" in response.text
        _assert_least_privilege(home, ports, password)
    finally:
        code = _stop(process)
    assert code == 0
    assert all(_port_closed(port) for port in ports.values())

    process, banner = _start(env, log_path)  # second start: same data, no new password
    try:
        assert "Demo login" not in banner and "Log in as 'demo'" in banner
        _wait_healthy(ports["web"])
        assert "Welcome, demo" in _login(ports["web"], "demo", password).text
    finally:
        assert _stop(process) == 0


def _assert_least_privilege(home: Path, ports: dict, demo_password: str) -> None:
    var_dir = home / "var"
    assert _mode(home / ".env") == 0o600 and _mode(var_dir) & 0o067 == 0
    superuser_password = remember_secret((var_dir / "secrets" / "postgres-superuser").read_text().strip())
    assert _mode(var_dir / "secrets" / "postgres-superuser") == 0o600
    assert superuser_password not in (home / ".env").read_text()
    environments = _environments_of_run(var_dir)
    commands = " | ".join(environments)
    assert "-m webapp" in commands and "workers.celery_app worker" in commands and "-m feeds" in commands, commands
    holders = [command for command, environ in environments.items() if superuser_password.encode() in environ]
    assert holders == [], holders
    settings = dict(
        line.split("=", 1)
        for line in (home / ".env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    for name in ("POSTGRES_APP_PASSWORD", "REDIS_PASSWORD", "FLOWER_BASIC_AUTH"):
        remember_secret(settings[name])  # tests/secrets_audit.py: in no log of the run
    assert requests.get(f"http://127.0.0.1:{ports['flower']}/", timeout=5).status_code == 401
    user, flower_password = settings["FLOWER_BASIC_AUTH"].split(":", 1)
    assert (
        requests.get(
            f"http://127.0.0.1:{ports['flower']}/workers", auth=(user, flower_password), timeout=10
        ).status_code
        == 200
    )
    logs = [path for path in _files_under(var_dir) if path.name != "demo-password"]
    logs.append(Path(os.environ["ARISTOBOT_TEST_LOG_DIR"]) / "make-run.log")
    assert not [path for path in logs if demo_password.encode() in path.read_bytes()]
    assert all(_mode(path) & 0o007 == 0 for path in _files_under(var_dir / "redis"))


def test_port_in_use_is_one_clear_line(tmp_path):
    ports, env = _fresh_install(tmp_path)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports["web"]))
        blocker.listen()
        result = subprocess.run(
            [sys.executable, "-m", "cli", "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"aristobot: port {ports['web']} on 127.0.0.1 is already in use (needed by web); "
        "stop the other program or change the port in config.yaml"
    )
