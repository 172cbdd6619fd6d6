"""Speed benchmark: SMA(10/30) cross, 0.1% fees, our engine against backtesting.py on the same candles.

The candles are the 1,000,000-row series described in the README.md of the data folder (`data_dir` in
config.yaml: "A 1,000,000-row series for speed tests"), rebuilt from BTCUSDT-1m.csv and checked against
the sums it publishes.
"""

from __future__ import annotations

import math
import os
import time
import warnings

import numpy as np
import pandas as pd

from bench.backtest_vectorbt import (
    REPEATS,
    backtesting_py_trades,
    bench_vectorbt,
    best_of,
    compare_with_backtesting_py,
)
from bench.data import data_dir
from core.backtest.engine import BacktestSettings, run_backtest
from core.candles.csv_io import read_candles_csv
from core.infra.config import ROOT

SERIES_ROWS = 1_000_000
SERIES_START_MS = 1747699200000
MINUTE_MS = 60_000
FIRST_OPEN = 105573.73
# Published checks of the built series: sums of round(price * 100) and the last row.
EXPECTED_SUMS = {
    "open": 15742594728333,
    "high": 15745928691337,
    "low": 15739235050912,
    "close": 15742607851193,
}
EXPECTED_LAST_ROW = (1807699140000, 238256.88, 238256.88, 238098.85, 238129.69, 27.2424)
SMA_FAST, SMA_SLOW = 10, 30
BENCH_FEE = 0.001
EXAMPLE_PATH = ROOT / "core" / "strategies" / "examples" / "sma_cross.py"
BREAKOUT_STREAK_PATH = ROOT / "bench" / "strategies" / "breakout_streak.py"


class BenchDataError(RuntimeError):
    pass


def build_speed_series(base: pd.DataFrame, rows: int = SERIES_ROWS) -> pd.DataFrame:
    """Tile `base` end to end; copy j >= 1 scaled by last close of copy j-1 / first open, rounded to 0.01."""
    prices = {c: base[c].to_numpy(dtype="float64") for c in ("open", "high", "low", "close")}
    copies = math.ceil(rows / len(base))
    parts = {c: [prices[c]] for c in prices}
    last_close = prices["close"][-1]
    for _ in range(1, copies):
        k = last_close / FIRST_OPEN
        for c in prices:
            parts[c].append(np.round(prices[c] * k, 2))
        last_close = parts["close"][-1][-1]
    frame = pd.DataFrame({c: np.concatenate(parts[c])[:rows] for c in prices})
    frame.insert(0, "open_time", SERIES_START_MS + MINUTE_MS * np.arange(rows, dtype="int64"))
    frame["volume"] = np.tile(base["volume"].to_numpy(dtype="float64"), copies)[:rows]
    return frame


def check_speed_series(frame: pd.DataFrame) -> None:
    for column, expected in EXPECTED_SUMS.items():
        total = int(np.round(frame[column].to_numpy() * 100).astype("int64").sum())
        if total != expected:
            raise BenchDataError(f"built series: sum of round({column}*100) is {total}, README says {expected}")
    last = tuple(frame.iloc[-1].tolist())
    if int(last[0]) != EXPECTED_LAST_ROW[0] or not np.allclose(last[1:], EXPECTED_LAST_ROW[1:], rtol=0, atol=1e-9):
        raise BenchDataError(f"built series: last row is {last}, README says {EXPECTED_LAST_ROW}")


def load_speed_series(rows: int) -> pd.DataFrame:
    full = build_speed_series(read_candles_csv(data_dir() / "BTCUSDT-1m.csv"))
    check_speed_series(full)
    return full.iloc[:rows].reset_index(drop=True)


def load_example_strategy() -> type:
    """The SMA example loaded exactly as user code is (restricted loader), when it is available."""
    code = EXAMPLE_PATH.read_text()
    try:
        from core.strategies.loader import load_strategy_class
    except ImportError:
        from core.strategies.examples.sma_cross import SmaCross

        return SmaCross
    return load_strategy_class(code)


def backtesting_py_frame(candles: pd.DataFrame) -> pd.DataFrame:
    """Our candle columns as backtesting.py reads them (capitalised OHLCV, indexed by open time)."""
    return pd.DataFrame(
        {
            "Open": candles["open"].to_numpy(),
            "High": candles["high"].to_numpy(),
            "Low": candles["low"].to_numpy(),
            "Close": candles["close"].to_numpy(),
            "Volume": candles["volume"].to_numpy(),
        },
        index=pd.to_datetime(candles["open_time"].to_numpy(), unit="ms"),
    )


def without_progress_bar() -> None:
    """backtesting.py draws a tqdm progress bar when tqdm is installed (vectorbt brings it): not in a bench."""
    import backtesting.backtesting as backtesting_module

    backtesting_module._tqdm = lambda seq, **_: seq  # type: ignore[assignment]


def run_backtesting_py(candles: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    import ta
    from backtesting import Backtest
    from backtesting import Strategy as BtStrategy

    def sma(values, window):
        return ta.trend.sma_indicator(pd.Series(np.asarray(values)), window=window).to_numpy()

    class BtSmaCross(BtStrategy):
        def init(self):
            self.fast = self.I(sma, self.data.Close, SMA_FAST)
            self.slow = self.I(sma, self.data.Close, SMA_SLOW)

        def next(self):
            f, s = self.fast, self.slow
            if not self.position:
                if f[-2] <= s[-2] and f[-1] > s[-1]:
                    self.buy(size=1)  # whole units: only times and prices are compared
            elif f[-2] >= s[-2] and f[-1] < s[-1]:
                self.position.close()

    data = backtesting_py_frame(candles)
    without_progress_bar()
    bt = Backtest(data, BtSmaCross, cash=1e12, commission=BENCH_FEE, finalize_trades=False)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "trades remain open": intended, open trades are not compared
        stats = bt.run()
    return time.perf_counter() - started, stats._trades


def compare_trades(ours: list, theirs: pd.DataFrame) -> dict:
    mine = [(t.entry_index, t.exit_index, t.entry_price, t.exit_price) for t in ours if t.exit_reason != "end_of_data"]
    other = backtesting_py_trades(theirs)
    first_diff = next((k for k, (a, b) in enumerate(zip(mine, other, strict=False)) if a != b), None)
    return {
        "aristobot_trades": len(mine),
        "backtesting_py_trades": len(other),
        "identical": mine == other,
        "first_difference": None
        if first_diff is None
        else {"ours": mine[first_diff], "backtesting_py": other[first_diff]},
    }


def bench_backtest(
    rows: int = SERIES_ROWS,
    with_backtesting_py: bool = True,
    candles: pd.DataFrame | None = None,
    with_vectorbt: bool = True,
) -> dict:
    """The SMA case; with vectorbt beside it (`sma`, `vectorbt`) unless `with_vectorbt` is false (its numba
    compilation alone takes 15-35 s)."""
    candles = load_speed_series(rows) if candles is None else candles
    strategy_cls = load_example_strategy()
    settings = BacktestSettings(fee=BENCH_FEE)
    started = time.perf_counter()
    result = run_backtest(strategy_cls, candles, {"fast": SMA_FAST, "slow": SMA_SLOW}, settings)
    ours = time.perf_counter() - started
    if result.status != "ok":
        raise RuntimeError(f"benchmark backtest failed: {result.error}")
    report = {
        "benchmark": "backtest",
        "strategy": f"SMA({SMA_FAST}/{SMA_SLOW}) cross, long only, fee {BENCH_FEE}",
        "candles": rows,
        "series_checked": True,
        "aristobot_seconds": round(ours, 4),
        "aristobot_candles_per_second": round(rows / ours),
        "evaluation": result.evaluation,
        "trades": len(result.trades),
    }
    if with_backtesting_py:
        theirs, their_trades = run_backtesting_py(candles)
        report["backtesting_py_seconds"] = round(theirs, 4)
        report["speedup"] = round(theirs / ours, 1)
        report["trades_match"] = compare_trades(result.trades, their_trades)
        report["target_5x_met"] = theirs / ours >= 5
        if with_vectorbt:
            report["sma"], report["vectorbt"] = sma_against_vectorbt(strategy_cls, candles, settings, their_trades)
    report["target_500k_per_second_met"] = rows / ours >= 500_000
    report["cpu_count"] = os.cpu_count()
    report["loadavg_1min"] = os.getloadavg()[0]
    return report


def sma_against_vectorbt(strategy_cls: type, candles: pd.DataFrame, settings: BacktestSettings, theirs) -> tuple:
    """(the "sma" and "vectorbt" parts of the report): both best of REPEATS, wall and CPU, same candles."""
    params = {"fast": SMA_FAST, "slow": SMA_SLOW}
    seconds, cpu_seconds, _ = best_of(lambda: run_backtest(strategy_cls, candles, params, settings))
    peer = bench_vectorbt(candles, SMA_FAST, SMA_SLOW, BENCH_FEE)
    peer["trades_match_backtesting_py"] = compare_with_backtesting_py(peer.pop("records"), theirs)
    sma = {
        "seconds": round(seconds, 4),
        "cpu_seconds": round(cpu_seconds, 4),
        "timing": f"best of {REPEATS}, each engine",
        "at_or_below_vectorbt": seconds <= peer["seconds"],
        "cpu_at_or_below_vectorbt": cpu_seconds <= peer["cpu_seconds"],
    }
    return sma, peer
