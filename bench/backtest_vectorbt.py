"""vectorbt as a peer of the benchmark's SMA case (issue 21): the same SMA(10/30) cross on the same candles.

vectorbt fills a signal at the price given for its bar, so the cross seen at the close of candle i is
handed over at candle i+1 with that candle's open, as backtesting.py and our engine fill it; trades
are compared one by one with backtesting.py's. Its functions are compiled by numba on the first call:
a warm-up on a few candles comes first and its time is reported apart (`first_call_seconds`).
Both engines are timed best of REPEATS, wall and CPU, on the shared machine.

vectorbt's moving average keeps a running sum without compensation, so on a long series it drifts from
pandas' (which ta and our engine use) by ~1e-9: where the two SMAs are exactly equal in pandas, vectorbt
may see a cross one bar apart (on the 1M-candle series: trade 8,678, one exit one bar later).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from importlib.metadata import version

import pandas as pd

REPEATS = 3
WARM_UP_CANDLES = 2000


def vectorbt_sma_trades(candles: pd.DataFrame, fast_window: int, slow_window: int, fee: float) -> pd.DataFrame:
    """The cross in vectorbt: entry_idx, exit_idx, entry_price, exit_price and status of each trade."""
    import vectorbt as vbt

    close = pd.Series(candles["close"].to_numpy())
    fast, slow = vbt.MA.run(close, fast_window), vbt.MA.run(close, slow_window)
    entries = fast.ma_crossed_above(slow).shift(1, fill_value=False)
    exits = fast.ma_crossed_below(slow).shift(1, fill_value=False)
    portfolio = vbt.Portfolio.from_signals(
        close, entries, exits, price=pd.Series(candles["open"].to_numpy()), fees=fee, size=1.0, init_cash=1e12
    )
    return portfolio.trades.records


def best_of(run: Callable[[], object], repeats: int = REPEATS) -> tuple[float, float, object]:
    """(best wall seconds, best CPU seconds, the last answer) over `repeats` calls."""
    walls, cpus, answer = [], [], None
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        answer = run()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_started)
    return min(walls), min(cpus), answer


def backtesting_py_trades(theirs: pd.DataFrame) -> list[tuple[int, int, float, float]]:
    """backtesting.py's closed trades as (entry bar, exit bar, entry price, exit price)."""
    return list(
        zip(
            theirs["EntryBar"].astype(int).tolist(),
            theirs["ExitBar"].astype(int).tolist(),
            theirs["EntryPrice"].astype(float).tolist(),
            theirs["ExitPrice"].astype(float).tolist(),
            strict=True,
        )
    )


def compare_with_backtesting_py(records: pd.DataFrame, theirs: pd.DataFrame) -> dict:
    closed = records[records["status"] == 1]
    mine = list(
        zip(
            closed["entry_idx"].astype(int).tolist(),
            closed["exit_idx"].astype(int).tolist(),
            closed["entry_price"].astype(float).tolist(),
            closed["exit_price"].astype(float).tolist(),
            strict=True,
        )
    )
    other = backtesting_py_trades(theirs)
    differing = [k for k, (a, b) in enumerate(zip(mine, other, strict=False)) if a != b]
    return {
        "vectorbt_trades": len(mine),
        "backtesting_py_trades": len(other),
        "identical": mine == other,
        "differing_trades": len(differing),
        "first_difference": None
        if not differing
        else {"trade": differing[0], "vectorbt": mine[differing[0]], "backtesting_py": other[differing[0]]},
    }


def bench_vectorbt(candles: pd.DataFrame, fast_window: int, slow_window: int, fee: float) -> dict:
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vectorbt_sma_trades(candles.iloc[:WARM_UP_CANDLES], fast_window, slow_window, fee)
    first_call = time.perf_counter() - started
    seconds, cpu_seconds, records = best_of(lambda: vectorbt_sma_trades(candles, fast_window, slow_window, fee))
    assert isinstance(records, pd.DataFrame)
    return {
        "version": version("vectorbt"),
        "seconds": round(seconds, 4),
        "cpu_seconds": round(cpu_seconds, 4),
        "first_call_seconds": round(first_call, 2),
        "trades": int((records["status"] == 1).sum()),
        "records": records,
    }
