import pandas as pd

from bench.backtest import (
    EXPECTED_LAST_ROW,
    bench_backtest,
    build_speed_series,
    check_speed_series,
)
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
    report = bench_backtest(20_000)
    assert report["trades_match"]["identical"], report["trades_match"]
    assert report["trades_match"]["aristobot_trades"] > 100
    assert set(report["evaluation"].values()) == {"vectorized"}
    assert report["aristobot_seconds"] > 0 and isinstance(report["speedup"], float)


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ARISTOBOT_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("ARISTOBOT_DATA_DIR")
    assert (data_dir() / "BTCUSDT-1m.csv").exists()
    assert isinstance(pd.read_csv(data_dir() / "BTCUSDT-1m.csv", nrows=1), pd.DataFrame)
