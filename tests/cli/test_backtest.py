import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.backtest import backtest_command
from cli.bench import bench_backtest_command
from cli.dates import parse_date_ms

EXAMPLE = Path(__file__).resolve().parents[2] / "core" / "strategies" / "examples" / "sma_cross.py"


@pytest.fixture
def candles_csv(tmp_path) -> Path:
    rng = np.random.default_rng(7)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 3000)))
    opens = np.concatenate([[100.0], closes[:-1]])
    path = tmp_path / "candles.csv"
    with path.open("w") as handle:
        handle.write("open_time,open,high,low,close,volume\n")
        for i, (o, c) in enumerate(zip(opens, closes, strict=True)):
            handle.write(
                f"{1_704_067_200_000 + 3_600_000 * i},{o:.2f},{max(o, c) + 0.5:.2f},{min(o, c) - 0.5:.2f},{c:.2f},1\n"
            )
    return path


def test_backtest_json_and_trades_file(candles_csv, tmp_path):
    trades = tmp_path / "trades.csv"
    args = ["--candles", candles_csv, "--strategy", EXAMPLE, "--param", "fast=5", "--json", "--trades", trades]
    result = CliRunner().invoke(backtest_command, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["trades"] > 10
    assert out["final_equity"] == pytest.approx(out["metrics"]["final_equity"])
    for key in (
        "total_return_pct",
        "cagr_pct",
        "sharpe",
        "sortino",
        "calmar",
        "max_drawdown_pct",
        "win_rate_pct",
        "profit_factor",
        "expectancy",
        "exposure_pct",
        "buy_and_hold_return_pct",
        "num_trades",
    ):
        assert key in out["metrics"]
    with trades.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == out["trades"] and rows[0]["side"] == "long"


def test_backtest_table_and_date_range(candles_csv):
    args = ["--candles", str(candles_csv), "--strategy", str(EXAMPLE), "--from", "2024-01-10", "--to", "2024-02-10"]
    result = CliRunner().invoke(backtest_command, args)
    assert result.exit_code == 0, result.output
    assert "sharpe" in result.output and "total_return_pct" in result.output


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--param", "nope=1"], "unknown parameter"),
        (["--from", "2030-01-01"], "no candles between"),
        (["--fee", "0.5"], "fee must be"),
        (["--param", "fast"], "NAME=VALUE"),
    ],
)
def test_backtest_bad_input_is_a_clear_error(candles_csv, extra, words):
    result = CliRunner().invoke(backtest_command, ["--candles", str(candles_csv), "--strategy", str(EXAMPLE), *extra])
    assert result.exit_code != 0
    assert words in result.output


def test_bad_candle_file_names_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("open_time,open,high,low,close,volume\n1,1,1,1,1,1\n2,1,x,1,1,1\n")
    result = CliRunner().invoke(backtest_command, ["--candles", str(bad), "--strategy", str(EXAMPLE)])
    assert result.exit_code == 1 and "line 3" in result.output


def test_failing_strategy_reports_line_and_candle(candles_csv, tmp_path):
    strategy = tmp_path / "boom.py"
    strategy.write_text(
        "from core.strategies import Strategy\n\n\nclass Boom(Strategy):\n    def should_long(self):\n"
        "        if len(self.data.close) > 5:\n            return {}['x']\n        return False\n"
    )
    result = CliRunner().invoke(
        backtest_command, ["--candles", str(candles_csv), "--strategy", str(strategy), "--json"]
    )
    assert result.exit_code == 1
    error = json.loads(result.output)["error"]
    assert (
        error["line"] == 7
        and error["method"] == "should_long"
        and error["candle_time_ms"] == 1_704_067_200_000 + 5 * 3_600_000
    )


@pytest.mark.parametrize(
    ("methods", "method", "words"),
    [
        ("    def should_long(self):\n        return 'yes'\n", "should_long", "True or False"),
        (
            "    def should_long(self):\n        return True\n\n    def stop_loss(self):\n        return math.nan\n",
            "stop_loss",
            "positive price",
        ),
        (
            "    def should_long(self):\n        return True\n\n    def position_size(self):\n        return -0.5\n",
            "position_size",
            "(0, 1]",
        ),
        ("    def should_long(self):\n        return self.should_long()\n", "should_long", "recursed too deeply"),
    ],
    ids=["string-bool", "nan-stop", "negative-size", "endless-recursion"],
)
def test_bad_answers_name_the_method_the_candle_and_the_line(candles_csv, tmp_path, methods, method, words):
    strategy = tmp_path / "bad.py"
    strategy.write_text("import math\nfrom core.strategies import Strategy\n\n\nclass Bad(Strategy):\n" + methods)
    result = CliRunner().invoke(
        backtest_command, ["--candles", str(candles_csv), "--strategy", str(strategy), "--json"]
    )
    assert result.exit_code == 1
    error = json.loads(result.output)["error"]
    assert error["method"] == method and words in error["message"]
    assert error["candle_time_ms"] == 1_704_067_200_000 and isinstance(error["line"], int) and error["line"] >= 6


@pytest.mark.parametrize("method", ["init", "should_long"])
def test_strategy_that_never_returns_is_stopped_by_its_phase_budget(candles_csv, tmp_path, method):
    strategy = tmp_path / "hang.py"
    strategy.write_text(
        "from core.strategies import Strategy\n\n\nclass Hang(Strategy):\n"
        f"    def {method}(self):\n        while True:\n            pass\n"
    )
    result = CliRunner().invoke(backtest_command, ["--candles", str(candles_csv), "--strategy", str(strategy)])
    assert result.exit_code == 1
    assert f"the strategy did not finish `{method}` within " in result.output
    assert "(line 6)" in result.output or "(line 7)" in result.output


def test_parse_date_ms():
    assert parse_date_ms("2024-01-01") == 1_704_067_200_000
    assert parse_date_ms("2024-01-01", end_of_day=True) == 1_704_067_200_000 + 86_400_000 - 1
    assert parse_date_ms("1704067200000") == 1_704_067_200_000


def test_bench_command_prints_json():
    result = CliRunner().invoke(bench_backtest_command, ["--candles", "5000", "--json", "--skip-vectorbt"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["candles"] == 5000 and report["trades_match"]["identical"]
