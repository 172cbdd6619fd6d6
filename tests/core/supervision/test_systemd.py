"""`aristobot deploy systemd`: units systemd accepts, ordered like `aristobot run`, no secret in them."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from cli.main import main
from core.infra.config import get_settings
from core.supervision.config import read_procfile, shell_command
from tests.conftest import ROOT, TEST_SECRET_KEY


def _units(tmp_path) -> dict[str, dict[str, list[str]]]:
    result = CliRunner().invoke(main, ["deploy", "systemd", "--dir", str(tmp_path), "--user", "aristobot"])
    assert result.exit_code == 0, result.output
    assert "systemctl daemon-reload && systemctl enable --now aristobot.target" in result.output
    units = {}
    for path in tmp_path.iterdir():
        text = path.read_text()
        assert TEST_SECRET_KEY not in text
        entries: dict[str, list[str]] = {}
        for line in text.splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                entries.setdefault(key, []).append(value)
        units[path.name] = entries
    return units


def test_units_restart_on_failure_and_stop_in_order(tmp_path):
    units = _units(tmp_path)
    procfile = read_procfile(ROOT / "Procfile")
    # The test settings use an external DATABASE_URL and REDIS_URL: no postgres or redis unit then.
    expected = {name for name in procfile if name not in ("postgres", "redis")}
    assert {name.removeprefix("aristobot-").removesuffix(".service") for name in units} == expected | {
        "setup",
        "aristobot.target",
    }
    for name in expected:
        unit = units[f"aristobot-{name}.service"]
        assert unit["Restart"] == ["on-failure"] and unit["User"] == ["aristobot"]
        assert unit["StartLimitBurst"] and unit["RestartSec"] and unit["TimeoutStopSec"]
        assert unit["EnvironmentFile"] == [str(get_settings().env_path)]
        command = unit["ExecStart"][0].replace("$$", "$").replace("%%", "%")
        assert shlex.split(command) == ["/bin/sh", "-c", shell_command(procfile[name])]
    arb_after = units["aristobot-arb.service"]["After"][0].split()
    # systemd stops in the reverse order of After=: the arb engine before its venues and the other services.
    assert {"aristobot-sim.service", "aristobot-perpsim.service", "aristobot-worker.service"} <= set(arb_after)
    assert int(units["aristobot-arb.service"]["TimeoutStopSec"][0]) >= 60
    assert "aristobot-setup.service" in units["aristobot-web.service"]["After"][0]
    assert set(units["aristobot.target"]["Wants"][0].split()) == {f"aristobot-{n}.service" for n in expected} | {
        "aristobot-setup.service"
    }


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd on this machine")
def test_systemd_accepts_every_unit(tmp_path):
    _units(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    problems = [line for line in result.stderr.splitlines() if "aristobot" in line]
    assert result.returncode == 0 and problems == [], result.stderr
