import pandas as pd
import pytest

from bench.backtest import (
    EXPECTED_LAST_ROW,
    bench_backtest,
    build_speed_series,
    check_speed_series,
    load_speed_series,
)
from bench.backtest_stateful import bench_stateful
from bench.data import data_dir
from core.candles.csv_io import read_candles_csv


def test_speed_series_matches_the_published_checksums():
    series = build_speed_series(read_candles_csv(data_dir() / "BTCUSDT-1m.csv"))
    check_speed_series(series)  # raises on any difference
    assert len(series) == 1_000_000
    assert int(series["open_time"].iat[-1]) == EXPECTED_LAST_ROW[0]
    # each tiled copy opens at the last close of the copy before it
    assert series["open"].iat[130_708] == series["close"].iat[130_707]


def test_small_bench_gives_identical_trades_to_backtesting_py():
    report = bench_backtest(20_000, with_vectorbt=False)  # vectorbt's compilation alone takes 15-35 s
    assert report["trades_match"]["identical"], report["trades_match"]
    assert report["trades_match"]["aristobot_trades"] > 100
    assert set(report["evaluation"].values()) == {"vectorized"}
    assert report["aristobot_seconds"] > 0 and isinstance(report["speedup"], float)


@pytest.mark.slow
def test_small_stateful_bench_gives_identical_trades_to_backtesting_py():
    report = bench_stateful(load_speed_series(20_000))
    assert report["trades_identical"], report["trades_match"]
    assert report["trades"] > 100
    assert report["evaluation"]["should_long"].startswith("per candle")
    assert report["cpu_seconds"] > 0 and isinstance(report["cpu_speedup"], float)


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ARISTOBOT_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("ARISTOBOT_DATA_DIR")
    assert (data_dir() / "BTCUSDT-1m.csv").exists()
    assert isinstance(pd.read_csv(data_dir() / "BTCUSDT-1m.csv", nrows=1), pd.DataFrame)


def test_vectorbt_trades_are_compared_one_by_one_with_the_first_difference():
    from bench.backtest_vectorbt import compare_with_backtesting_py

    records = pd.DataFrame(
        {"entry_idx": [1, 5, 9], "exit_idx": [3, 7, 10], "entry_price": [1.0, 2.0, 3.0], "exit_price": [1.5, 2.5, 3.5]}
    ).assign(status=[1, 1, 0])  # the last one still open: not compared
    theirs = pd.DataFrame({"EntryBar": [1, 5], "ExitBar": [3, 8], "EntryPrice": [1.0, 2.0], "ExitPrice": [1.5, 2.5]})
    match = compare_with_backtesting_py(records, theirs)
    assert match["vectorbt_trades"] == match["backtesting_py_trades"] == 2
    assert not match["identical"] and match["differing_trades"] == 1
    assert match["first_difference"] == {"trade": 1, "vectorbt": (5, 7, 2.0, 2.5), "backtesting_py": (5, 8, 2.0, 2.5)}
