"""Driving a real supervisord through its socket: the platform's own tiers start once told (`aristobot run`,
after migrating), stop (trading first) and start again while the infrastructure stays up, as `aristobot
backup restore` does around the database swap."""

from __future__ import annotations

import subprocess
import sys
import time

from core.supervision.config import programs, render
from core.supervision.control import Supervisor, socket_path

PROCFILE = {"postgres": "exec sleep 600", "web": "exec sleep 600", "arb": "exec sleep 600"}


def _until(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"never: {what}")


def _app_running(supervisor: Supervisor) -> bool:
    """Running, not only starting: a stop signal sent between supervisord's fork and the program's exec is lost
    (supervisord's own handler takes it), and the stop would then wait out the program's stopwaitsecs."""
    states = supervisor.process_states()
    return supervisor.app_processes_running() == ["arb", "web"] and states["arb"] == states["web"] == "RUNNING"


def test_the_app_tiers_stop_and_start_again_while_the_infrastructure_stays_up(tmp_path):
    assert Supervisor.running(tmp_path) is None  # no supervisord here yet
    (tmp_path / "logs").mkdir()
    config = tmp_path / "supervisord.conf"
    config.write_text(render(programs(PROCFILE, list(PROCFILE)), tmp_path, tmp_path))
    daemon = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "--nodaemon", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        supervisor = _until(lambda: socket_path(tmp_path).exists() and Supervisor.running(tmp_path), "socket")
        # The app tiers wait for `aristobot run` to start them once the database is migrated.
        _until(lambda: supervisor.process_states()["postgres"] == "RUNNING", "infrastructure running")
        assert supervisor.app_processes_running() == [] and supervisor.pid("web") == 0
        supervisor.start_app()
        _until(lambda: _app_running(supervisor), "app running")
        assert supervisor.pid("web") > 0 and supervisor.pid("arb") not in (0, supervisor.pid("web"))
        supervisor.stop_app()
        states = supervisor.process_states()
        assert supervisor.app_processes_running() == []
        assert states["arb"] == states["web"] == "STOPPED"
        assert states["postgres"] in ("STARTING", "RUNNING")
        supervisor.start_app()
        _until(lambda: _app_running(supervisor), "app running again")
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
