"""`aristobot backtest --grid`: the user's grid engine (core/backtest/grid.py, the web's too) through real
sandboxes on both cores, against the same combinations run one by one; bad grids refused with the reason."""

import json

import pytest
from click.testing import CliRunner

from cli.backtest import backtest_command
from core.backtest.engine import BacktestSettings, run_backtest
from core.candles.csv_io import read_candles_csv
from core.strategies.loader import load_strategy_class
from tests.cli.test_backtest import EXAMPLE, candles_csv  # noqa: F401 - the fixture


@pytest.mark.slow
def test_grid_on_both_cores_equals_the_runs_one_by_one(candles_csv):  # noqa: F811
    args = ["--candles", candles_csv, "--strategy", EXAMPLE, "--fee", "0.002", "--json", "--workers", "2"]
    args += ["--grid", "fast = 3, 5", "--grid", "slow = 20..40:10", "--rank-by", "sharpe"]
    result = CliRunner().invoke(backtest_command, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["status"] == "ok" and out["combinations"] == 6 and out["failed"] == 0
    strategy, candles = load_strategy_class(EXAMPLE.read_text()), read_candles_csv(candles_csv)
    for entry in out["results"]:
        alone = run_backtest(strategy, candles, entry["params"], BacktestSettings(fee=0.002))
        assert entry["metrics"] == json.loads(json.dumps(alone.metrics)) and entry["trades"] == len(alone.trades)
    assert [(e["params"]["fast"], e["params"]["slow"]) for e in out["results"]] == [
        (f, s) for f in (3, 5) for s in (20, 30, 40)
    ]
    assert out["best"]["metrics"]["sharpe"] == max(e["metrics"]["sharpe"] for e in out["results"])


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--grid", "fast = 5..1"], "the start must not exceed the end"),
        (["--grid", "fast"], "is not NAME = START..END"),
        (["--grid", "fast = 1..500", "--grid", "slow = 1..500"], "at most 200 combinations"),
        (["--grid", "fast = 3, 5", "--rank-by", "luck"], "rank by one of"),
        (["--grid", "fast = 3, 5", "--trades", "t.csv"], "not its trades"),
    ],
)
def test_bad_grids_are_refused_with_the_reason(candles_csv, extra, fragment):  # noqa: F811
    args = ["--candles", str(candles_csv), "--strategy", str(EXAMPLE), *extra]
    result = CliRunner().invoke(backtest_command, args)
    assert result.exit_code == 2 and fragment in result.output
