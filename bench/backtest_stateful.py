"""The benchmark's stateful case (issue 21): a strategy that keeps state between candles, run per candle.

bench/strategies/breakout_streak.py (20-bar breakout, a signal-streak counter on `self`, an ATR stop),
loaded as user code is, against the same logic in backtesting.py on the same candles; trades compared
one by one. Its should_long writes state, so our engine calls it on every candle while flat: this
measures the per-candle path (restricted code, views, bookkeeping), not the vectoriser.
"""

from __future__ import annotations

import importlib.util
import time
import warnings

import numpy as np
import pandas as pd

from bench.backtest import (
    BENCH_FEE,
    BREAKOUT_STREAK_PATH,
    SERIES_ROWS,
    backtesting_py_frame,
    bench_backtest,
    compare_trades,
    load_speed_series,
    without_progress_bar,
)
from core.backtest.engine import BacktestSettings, run_backtest
from core.strategies.loader import load_strategy_class

TARGET_SPEEDUP = 3.0
TARGET_CANDLES_PER_SECOND = 150_000


def _plain_module():
    """The strategy file imported as plain Python: backtesting.py's side uses its indicator function."""
    spec = importlib.util.spec_from_file_location("bench_breakout_streak", BREAKOUT_STREAK_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_backtesting_py_breakout(candles: pd.DataFrame, params: dict) -> tuple[float, float, pd.DataFrame]:
    """(wall seconds, CPU seconds, trades) of backtesting.py on the same logic."""
    from backtesting import Backtest
    from backtesting import Strategy as BtStrategy

    atr = _plain_module().average_true_range

    def channel_high(high, lookback):
        return pd.Series(np.asarray(high)).rolling(lookback).max().shift(1).to_numpy()

    def channel_low(low, lookback):
        return pd.Series(np.asarray(low)).rolling(lookback).min().shift(1).to_numpy()

    class BtBreakoutStreak(BtStrategy):
        def init(self):
            self.upper = self.I(channel_high, self.data.High, params["lookback"])
            self.lower = self.I(channel_low, self.data.Low, params["exit_lookback"])
            self.atr = self.I(
                lambda high, low, close: atr(high, low, close, params["atr_window"]).to_numpy(),
                self.data.High,
                self.data.Low,
                self.data.Close,
            )
            self.streak = 0

        def next(self):
            # Our engine's order of questions: should_exit while in a position, should_long while flat
            # (or on the candle it decided to exit), stop_loss on an entry.
            close = self.data.Close[-1]
            exiting = False
            if self.position:
                if close >= self.lower[-1]:
                    return
                self.position.close()
                exiting = True
            self.streak = self.streak + 1 if close > self.upper[-1] else 0
            if self.streak >= params["streak"] and (exiting or not self.position):
                self.buy(size=1, sl=close - params["atr_mult"] * self.atr[-1])

    data = backtesting_py_frame(candles)
    without_progress_bar()
    bt = Backtest(data, BtBreakoutStreak, cash=1e12, commission=BENCH_FEE, finalize_trades=False)
    started, cpu_started = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.run()
    return time.perf_counter() - started, time.process_time() - cpu_started, stats._trades


def bench_stateful(candles: pd.DataFrame, with_backtesting_py: bool = True) -> dict:
    strategy_cls = load_strategy_class(BREAKOUT_STREAK_PATH.read_text())
    params = dict(strategy_cls.params)
    rows = len(candles)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run_backtest(strategy_cls, candles, params, BacktestSettings(fee=BENCH_FEE))
    ours, ours_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if result.status != "ok":
        raise RuntimeError(f"stateful benchmark backtest failed: {result.error}")
    report: dict = {
        "strategy": "20-bar breakout, 2-close streak counter on self, ATR(14) stop, exit below the 10-bar low",
        "seconds": round(ours, 4),
        "cpu_seconds": round(ours_cpu, 4),
        "candles_per_second": round(rows / ours),
        "cpu_candles_per_second": round(rows / ours_cpu),  # the machine is shared: CPU time beside wall time
        "evaluation": result.evaluation,
        "trades": len(result.trades),
    }
    if with_backtesting_py:
        theirs, theirs_cpu, their_trades = run_backtesting_py_breakout(candles, params)
        match = compare_trades(result.trades, their_trades)
        report["backtesting_py_seconds"] = round(theirs, 4)
        report["backtesting_py_cpu_seconds"] = round(theirs_cpu, 4)
        report["speedup"] = round(theirs / ours, 2)
        report["cpu_speedup"] = round(theirs_cpu / ours_cpu, 2)
        report["trades_identical"] = match["identical"]
        report["trades_match"] = match
        report["target_speedup_met"] = theirs / ours >= TARGET_SPEEDUP
    report["target_candles_per_second_met"] = rows / ours >= TARGET_CANDLES_PER_SECOND
    return report


def bench_backtest_cases(rows: int = SERIES_ROWS, with_backtesting_py: bool = True, with_vectorbt: bool = True) -> dict:
    """`aristobot bench backtest`: the vectorised SMA cross, with the stateful case under "stateful"."""
    candles = load_speed_series(rows)
    report = bench_backtest(rows, with_backtesting_py, candles=candles, with_vectorbt=with_vectorbt)
    report["stateful"] = bench_stateful(candles, with_backtesting_py)
    return report
