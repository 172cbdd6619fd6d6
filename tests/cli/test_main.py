"""The `aristobot` group: every command area is there, and none can silently go missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

import cli
from cli.main import main
from tests.conftest import ROOT

HELPERS = {"__init__", "__main__", "main", "errors", "dates"}
COMMAND_MODULES = sorted(p.stem for p in Path(cli.__file__).parent.glob("*.py") if p.stem not in HELPERS)


def test_every_command_and_benchmark_is_registered():
    assert set(main.commands) == {
        "run",
        "db",
        "user",
        "services",
        "sim",
        "arb",
        "feeds",
        "bench",
        "backtest",
        "candles",
        "orders",
        "halt",
        "flatten",
        "trading",
        "backup",
        "deploy",
        "ledger",
    }
    bench = main.commands["bench"]
    assert isinstance(bench, click.Group)
    assert set(bench.commands) == {
        "backtest",
        "backtest-grid",
        "backtest-web",
        "feeds",
        "gateway",
        "reconcile",
        "webhook",
        "arb",
        "notify",
        "backup",
        "chaos",
        "parity",
        "bots",
        "statistics",
    }


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_a_missing_command_module_stops_the_command_line_at_start(module):
    blocked = f"import sys; sys.modules['cli.{module}'] = None; import cli.main"
    result = subprocess.run([sys.executable, "-c", blocked], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"ModuleNotFoundError: import of cli.{module} halted" in result.stderr


def test_python_dash_m_cli_is_the_aristobot_command():
    result = subprocess.run(
        [sys.executable, "-m", "cli", "bench", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "backtest-web" in result.stdout


@pytest.mark.parametrize("victims", ["nosuch", "worker,nosuch", ","])
def test_bench_chaos_refuses_an_unknown_victim_before_touching_the_stack(victims):
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["bench", "chaos", "--victims", victims])
    assert result.exit_code == 2
    assert "--victims" in result.output and "not one of worker, maintenance, web" in result.output
