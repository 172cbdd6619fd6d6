"""Parameter grids: every combination backtested over the same candles, in the sandbox, on every core.

The web's grid runs (run_lifecycle) and `aristobot backtest --grid` both call `run_grid`; the grid
benchmark drives it too, so its runs per second are the user's. The combinations are cut into
`workers` contiguous slices, each run by its own warm sandbox (one process per core, one thread here
waiting on each); inside a sandbox the runs share an IndicatorCache (run_jobs.grid_chunk), so an
indicator with the same inputs (the fast SMA of 10 in the ten runs that vary the slow one) is
computed once per sandbox. Contiguous slices keep runs that share the first parameter together.
"""

from __future__ import annotations

import math
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from core.backtest.budget import backtest_limits
from core.backtest.packed import pack_candles
from core.strategies.phase_timer import candles_in

GRID_JOB = "core.backtest.run_jobs:grid_chunk"
GRID_PROGRESS_STEPS = 20  # a grid reports progress after each of about this many chunks
MAX_GRID_WORKERS = 8


def grid_workers() -> int:
    """One sandbox per core."""
    return max(1, min(MAX_GRID_WORKERS, os.cpu_count() or 1))


def split(items: list, parts: int) -> list[list]:
    """`items` in at most `parts` contiguous slices of near-equal length, in order, none empty."""
    size = math.ceil(len(items) / max(1, parts)) if items else 1
    return [items[start : start + size] for start in range(0, len(items), size)]


@dataclass
class GridOutcome:
    results: list[dict]  # grid_chunk's result of each combination, in the order of the combinations
    indicator_hits: int = 0  # indicator calls answered from a sandbox's cache
    indicator_misses: int = 0  # indicator calls computed
    sandbox_cpu_seconds: float = 0.0  # CPU time of the sandboxes' grid calls (their own clocks)


def run_grid(
    code: str,
    payload: dict,
    combos: list[dict],
    *,
    workers: int | None = None,
    reuse_indicators: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> GridOutcome:
    """Every combination of `combos` over the payload's candles. A SandboxError (the strategy cannot
    load, a sandbox limit) raises once every slice has stopped."""
    from core.strategies.sandbox import WarmSandbox

    outcome = GridOutcome([])
    if not combos:
        return outcome
    slices = split(list(range(len(combos))), workers or grid_workers())
    chunk_parts = max(1, math.ceil(GRID_PROGRESS_STEPS / len(slices)))
    results: list[dict | None] = [None] * len(combos)
    lock, failed = threading.Lock(), threading.Event()
    done = 0

    key = uuid.uuid4().hex  # each sandbox is sent the candles once, then they go by this key
    count = candles_in(payload)  # the time budget of a call stays that of the candles
    full = {**payload, "candles": pack_candles(payload["candles"]), "candles_key": key, "candle_count": count}
    full["reuse_indicators"] = reuse_indicators
    light = {**full, "candles": None}

    def run_slice(indexes: list[int]) -> None:
        nonlocal done
        with WarmSandbox(code, limits=backtest_limits(), preload=(GRID_JOB,)) as sandbox:
            sent = False
            for chunk in split(indexes, chunk_parts):
                if failed.is_set():  # another slice failed: the grid fails, stop spending CPU on it
                    return
                params_list = [combos[i] for i in chunk]
                try:
                    answer = sandbox.call(GRID_JOB, {**(light if sent else full), "params_list": params_list})
                    if answer.get("missing_candles"):  # a new sandbox child (the last one was replaced)
                        answer = sandbox.call(GRID_JOB, {**full, "params_list": params_list})
                except Exception:
                    failed.set()
                    raise
                sent = True
                for i, result in zip(chunk, answer.get("results", []), strict=True):
                    results[i] = result
                with lock:
                    done += len(chunk)
                    outcome.indicator_hits += answer.get("indicator_hits", 0)
                    outcome.indicator_misses += answer.get("indicator_misses", 0)
                    outcome.sandbox_cpu_seconds += answer.get("cpu_seconds", 0.0)
                    if on_progress is not None:
                        on_progress(done, len(combos))

    with ThreadPoolExecutor(max_workers=len(slices), thread_name_prefix="grid") as pool:
        futures = [pool.submit(run_slice, indexes) for indexes in slices]
        errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    outcome.results = [r for r in results if r is not None]
    return outcome
