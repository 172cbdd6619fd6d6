"""The supervisord configuration generated from the Procfile, read back by supervisord's own parser."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from core.supervision.config import ProcfileError, programs, read_procfile, render, shell_command
from tests.conftest import ROOT


def _parsed(tmp_path, names: list[str] | None = None):
    procfile = read_procfile(ROOT / "Procfile")
    (tmp_path / "logs").mkdir()
    config = tmp_path / "supervisord.conf"
    config.write_text(render(programs(procfile, names or list(procfile)), tmp_path, tmp_path))
    options = ServerOptions()
    options.realize(args=["-c", str(config)])
    return procfile, {group.name: group for group in options.process_group_configs}


def test_every_procfile_process_runs_its_exact_command_in_stop_order_tiers(tmp_path):
    procfile, groups = _parsed(tmp_path)
    seen = {
        process.name: (group.priority, process)
        for name, group in groups.items()
        if name != "supervision"
        for process in group.process_configs
    }
    assert set(seen) == set(procfile)
    for name, (_, process) in seen.items():
        # `%` (worker@%h) and the quotes of the flower line survive supervisord's expansion and splitting.
        assert shlex.split(process.command) == ["/bin/sh", "-c", shell_command(procfile[name])]
        assert process.killasgroup and process.autorestart
        # What needs no database starts with supervisord; `aristobot run` starts the rest once it is migrated,
        # so no process starts Python twice to wait for the schema first.
        assert process.autostart == (name in ("postgres", "redis", "sim", "perpsim")), name
        assert "db wait" not in procfile[name]
        assert process.stopasgroup == (name not in ("postgres", "redis"))  # their wrappers forward the stop
    priority = {name: group_priority for name, (group_priority, _) in seen.items()}
    # supervisord stops the highest priority first: arb, then the services, the venues, the infrastructure.
    assert priority["arb"] > priority["worker"] == priority["feeds"] > priority["sim"] == priority["perpsim"]
    assert priority["perpsim"] > priority["postgres"] == priority["redis"]
    assert seen["arb"][1].stopwaitsecs >= 60 and seen["worker"][1].stopwaitsecs >= 60
    listener = groups["supervision"]
    assert listener.priority < priority["postgres"]  # the last to stop: it records every other stop
    assert "core.supervision.listener" in listener.process_configs[0].command


def test_configuration_holds_no_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_PASSWORD", "never-in-the-config-file")
    _parsed(tmp_path, ["redis", "web"])
    assert "never-in-the-config-file" not in (tmp_path / "supervisord.conf").read_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [("web: a\nweb: b\n", "process names must be unique"), ("# nothing\n", "no process")],
)
def test_bad_procfile_is_one_clear_error(tmp_path, text, message):
    (tmp_path / "Procfile").write_text(text)
    with pytest.raises(ProcfileError, match=message):
        read_procfile(tmp_path / "Procfile")


def test_unknown_process_is_named():
    with pytest.raises(ProcfileError, match="not in the Procfile: nosuch"):
        programs({"web": "python -m webapp"}, ["web", "nosuch"])


def test_a_simple_command_replaces_the_shell_a_compound_one_keeps_it():
    assert shell_command("aristobot services postgres") == "exec aristobot services postgres"
    assert shell_command("exec python -m arb") == "exec python -m arb"
    compound = "aristobot db wait && exec python -m feeds"
    assert shell_command(compound) == compound


def test_an_embedded_server_stops_when_its_wrapper_is_killed(tmp_path):
    """kill -9 of `aristobot services redis|postgres` must not leave the server holding its port."""
    wrapper = (
        "import sys; from core.infra.embedded_services import start_server; "
        "print(start_server(['sleep', '300']).pid, flush=True); sys.stdin.read()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", wrapper], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    server = int(process.stdout.readline())
    process.kill()
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{server}").exists() and "Z" not in _state(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{server}").exists() or "Z" in _state(server)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
