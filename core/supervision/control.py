"""The running supervisord of `make run`, driven through its socket in var/: stop the platform's own processes
and start them again, leaving the infrastructure and the simulators up (what `aristobot backup restore` does
around the database swap)."""

from __future__ import annotations

import xmlrpc.client
from pathlib import Path
from typing import Any, cast

from supervisor.xmlrpc import SupervisorTransport

from core.supervision.config import APP_TIERS, DEFAULT_TIER, TIER_OF

RUNNING_STATES = {"STARTING", "RUNNING", "BACKOFF", "STOPPING"}


def socket_path(var_dir: Path) -> Path:
    return var_dir / "supervisor.sock"


class Supervisor:
    def __init__(self, socket: Path):
        transport = SupervisorTransport(serverurl=f"unix://{socket}")
        # The host is a placeholder: the transport speaks over the unix socket.
        self._rpc: Any = xmlrpc.client.ServerProxy("http://localhost", transport=transport)

    @classmethod
    def running(cls, var_dir: Path) -> Supervisor | None:
        """The supervisord of this install, or None when it is not running (`make run` is stopped, or the
        platform runs under systemd)."""
        socket = socket_path(var_dir)
        if not socket.exists():
            return None
        supervisor = cls(socket)
        try:
            supervisor._rpc.supervisor.getState()
        except (OSError, xmlrpc.client.Error):
            return None
        return supervisor

    def _processes(self) -> list[dict[str, Any]]:
        return cast("list[dict[str, Any]]", self._rpc.supervisor.getAllProcessInfo())

    def pid(self, name: str) -> int:
        """The pid of a program of the Procfile (0 while it is not running)."""
        return int(self._rpc.supervisor.getProcessInfo(f"{TIER_OF.get(name, DEFAULT_TIER)}:{name}")["pid"])

    def process_states(self) -> dict[str, str]:
        """Every program's supervisord state (RUNNING, STOPPED, FATAL...), by name."""
        return {info["name"]: info["statename"] for info in self._processes()}

    def app_processes_running(self) -> list[str]:
        """Names of the processes of APP_TIERS that are not stopped."""
        return sorted(
            info["name"]
            for info in self._processes()
            if info["group"] in APP_TIERS and info["statename"] in RUNNING_STATES
        )

    def stop_app(self) -> None:
        """Stop APP_TIERS one tier at a time, each process within its own stop time; returns once all are down."""
        groups = {info["group"] for info in self._processes()}
        for tier in APP_TIERS:
            if tier in groups:
                self._rpc.supervisor.stopProcessGroup(tier, True)

    def start_app(self) -> None:
        groups = {info["group"] for info in self._processes()}
        for tier in reversed(APP_TIERS):
            if tier in groups:
                self._rpc.supervisor.startProcessGroup(tier, False)
