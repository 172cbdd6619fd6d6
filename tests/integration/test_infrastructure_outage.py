"""Journey: Redis or Postgres is down at start or lost while running. Processes keep retrying, say so
in their logs and on /healthz, and recover on their own when the server is back."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from core.infra.embedded_pg import init_postgres, postgres_command, superuser_password_file
from core.infra.embedded_services import redis_command, start_server
from tests.conftest import ROOT, process_env
from tests.support import free_port, remember_secret, stop_process

pytestmark = pytest.mark.slow
LOG_DIR = Path(os.environ["ARISTOBOT_TEST_LOG_DIR"])
RETRY_WAIT = re.compile(r"Trying again in (\d+\.\d+) seconds")


class Server:
    """A dedicated Redis or Postgres that a test may stop and start again on the same port and data."""

    def __init__(self, kind: str, data_dir: Path):
        self.kind, self.data_dir, self.port = kind, data_dir, free_port()
        self.process: subprocess.Popen | None = None
        self.user = init_postgres(data_dir) if kind == "postgres" else None
        # The web process here only pings the server, so it may use the superuser (with its password).
        self.password = remember_secret(
            superuser_password_file(data_dir).read_text().strip() if kind == "postgres" else secrets.token_urlsafe(16)
        )

    def start(self) -> None:
        command = (
            redis_command(self.port, self.data_dir, self.password)
            if self.kind == "redis"
            else postgres_command(self.data_dir, self.port)
        )
        log = open(LOG_DIR / f"outage-{self.kind}.log", "a")  # noqa: SIM115
        self.process = start_server(command, user=self.user, stdout=log, stderr=log)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(30)

    @property
    def url(self) -> str:
        if self.kind == "redis":
            return f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/postgres"


def _healthz(port: int) -> tuple[int, dict]:
    response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    return response.status_code, response.json()


def _wait_for(predicate, timeout: float = 40.0, what: str = ""):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (requests.RequestException, ValueError) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {last}")


def _start(args: list[str], env: dict, log_name: str) -> subprocess.Popen:
    log = open(LOG_DIR / log_name, "a")  # noqa: SIM115
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=log)


def test_web_reports_outages_on_healthz_and_recovers(tmp_path, server_home):
    redis, postgres = Server("redis", tmp_path / "redis"), Server("postgres", server_home / "pg")
    web_port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(f"web: {{port: {web_port}}}\n")
    env = process_env(REDIS_URL=redis.url, DATABASE_URL=postgres.url, ARISTOBOT_CONFIG=str(config))
    web = _start([sys.executable, "-m", "webapp"], env, "outage-web.log")
    try:
        # Started before either server exists: the web process stays up and says what is missing.
        status, body = _wait_for(lambda: _healthz(web_port), what="web up")
        assert status == 503 and not body["postgres"]["ok"] and not body["redis"]["ok"]
        redis.start()
        postgres.start()
        _wait_for(lambda: _healthz(web_port)[0] == 200, what="healthy once servers are up")
        redis.stop()  # lost while running
        status, body = _wait_for(lambda: (r := _healthz(web_port))[0] == 503 and r, what="503 without redis")
        assert body["redis"]["ok"] is False and body["redis"]["error"]
        redis.start()
        _wait_for(lambda: _healthz(web_port)[0] == 200, what="recovered after redis restart")
        postgres.stop()
        status, body = _wait_for(lambda: (r := _healthz(web_port))[0] == 503 and r, what="503 without postgres")
        assert body["postgres"]["ok"] is False
        postgres.start()
        _wait_for(lambda: _healthz(web_port)[0] == 200, what="recovered after postgres restart")
    finally:
        stop_process(web)
        for server in (redis, postgres):
            if server.process and server.process.poll() is None:
                server.stop()


def _ping(env: dict, text: str) -> str:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from workers.celery_app import app; from core import tasks; "
            f"print(tasks.send_ping({text!r}, app=app).get(timeout=60))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    return probe.stdout.strip()


def test_worker_waits_for_redis_and_reconnects_after_a_restart(tmp_path):
    redis = Server("redis", tmp_path / "redis")
    env = process_env(REDIS_URL=redis.url)
    worker = _start(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            "-Q",
            "maintenance",
            "-c",
            "1",
            "-n",
            "outage@%h",
            "--without-gossip",
            "--without-mingle",
        ],
        env,
        "outage-worker.log",
    )
    try:
        time.sleep(4)
        assert worker.poll() is None, "the worker must keep retrying, not exit"
        redis.start()
        assert _ping(env, "back") == "back"
        # Lost while running: the same worker retries, reconnects and takes tasks again (it does not exit).
        redis.stop()
        log = LOG_DIR / "outage-worker.log"
        waits = _wait_for(lambda: RETRY_WAIT.findall(log.read_text()), timeout=90, what="a timed reconnect attempt")
        redis.start()
        assert _ping(env, "back again") == "back again"
        assert worker.poll() is None
        events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        assert any("Cannot connect" in e["event"] or "retry" in e["event"].lower() for e in events)
        # workers/consumer.py: the first timed retry after 0.5 s, where Celery's own waits 2, then 4, 6... 30 s.
        assert float(waits[0]) < 2.0, waits
    finally:
        stop_process(worker)
        redis.stop()
