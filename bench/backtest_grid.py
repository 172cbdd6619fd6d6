"""`aristobot bench backtest-grid`: a 100-run parameter grid of the SMA cross, the user's grid engine.

The grid runs through core/backtest/grid.py::run_grid, as `aristobot backtest --grid` and the web's grid
runs do (the strategy in warm sandboxes, the candles sent to each): first on one core with every
indicator computed per run (the baseline), then on every core with indicator results shared inside
each sandbox. Both runs must give the same metrics for every combination. The machine is shared:
wall seconds beside the CPU seconds of this process and its sandboxes, and the load average.
"""

from __future__ import annotations

import os
import time

from bench.backtest import EXAMPLE_PATH, load_speed_series
from core.backtest.grid import GridOutcome, grid_workers, run_grid
from core.backtest.run_params import grid_combinations
from core.candles.csv_io import CANDLE_COLUMNS

GRID_ROWS = 100_000
GRID = {"fast": list(range(5, 55, 5)), "slow": list(range(60, 160, 10))}  # 10 x 10 = 100 runs
GRID_FEE = 0.001


def _timed(payload: dict, combos: list[dict], workers: int, reuse: bool) -> tuple[GridOutcome, dict]:
    code = EXAMPLE_PATH.read_text()
    started, cpu_started = time.perf_counter(), time.process_time()
    outcome = run_grid(code, payload, combos, workers=workers, reuse_indicators=reuse)
    seconds, own_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    cpu = own_cpu + outcome.sandbox_cpu_seconds
    failed = [r for r in outcome.results if r.get("status") != "ok"]
    if failed:
        raise RuntimeError(f"grid benchmark: {len(failed)} runs failed, first: {failed[0].get('error')}")
    return outcome, {
        "workers": workers,
        "reuse_indicators": reuse,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),  # this process (sending, receiving) + the sandboxes' grid calls
        "sandbox_cpu_seconds": round(outcome.sandbox_cpu_seconds, 3),
        "runs_per_second": round(len(combos) / seconds, 2),
        "indicator_calls_computed": outcome.indicator_misses if reuse else "all (no reuse)",
        "indicator_calls_reused": outcome.indicator_hits,
    }


def bench_backtest_grid(rows: int = GRID_ROWS, workers: int | None = None) -> dict:
    candles = load_speed_series(rows)
    payload = {
        "candles": {c: candles[c].tolist() for c in CANDLE_COLUMNS},
        "params": {},
        "fee": GRID_FEE,
        "include_trades": False,
    }
    combos = grid_combinations(GRID)
    load_before = os.getloadavg()[0]
    base, baseline = _timed(payload, combos, workers=1, reuse=False)
    grid, fast = _timed(payload, combos, workers=workers or grid_workers(), reuse=True)
    same = [a["metrics"] for a in base.results] == [b["metrics"] for b in grid.results]
    return {
        "benchmark": "backtest-grid",
        "strategy": "SMA cross (core/strategies/examples/sma_cross.py), fee 0.001",
        "parameters": {name: f"{values[0]}..{values[-1]} ({len(values)} values)" for name, values in GRID.items()},
        "runs": len(combos),
        "candles": rows,
        "runs_per_second": fast["runs_per_second"],
        "grid": fast,
        "baseline_one_core_no_reuse": baseline,
        "speedup": round(baseline["seconds"] / fast["seconds"], 2),
        "cpu_speedup": round(baseline["cpu_seconds"] / fast["cpu_seconds"], 2),
        "results_identical": same,
        "cpu_count": os.cpu_count(),
        "loadavg_1min": [load_before, os.getloadavg()[0]],
    }
