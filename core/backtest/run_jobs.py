"""Jobs the web's backtest runs execute INSIDE the sandbox: `fn(strategy_cls, payload) -> dict`.

Payload as for engine.run_job: {candles (column lists), params, fee, slippage_bps, cash, start_ms,
end_ms}. Keep imports to what the sandbox child preloads (numpy, pandas, the engine): this module is
imported before the child locks itself down.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from core.backtest.engine import (
    BacktestInputError,
    BacktestResult,
    candles_from_payload,
    run_backtest,
    settings_from_payload,
)
from core.backtest.packed import unpack_candles
from core.candles.csv_io import CandleFileError
from core.strategies.contract import StrategyError
from core.strategies.indicator_cache import IndicatorCache

MAX_CHART_POINTS = 2000


def downsample_series(times_ms: np.ndarray, equity: np.ndarray, drawdown: np.ndarray, max_points: int) -> dict:
    """At most `max_points` points: equity at the last candle of each bucket, the deepest drawdown in it
    (so the worst drawdown survives the downsampling)."""
    n = len(times_ms)
    if n <= max_points:
        return {"time_ms": times_ms.tolist(), "equity": equity.tolist(), "drawdown": drawdown.tolist()}
    starts = np.linspace(0, n, max_points, endpoint=False).astype("int64")
    last = np.append(starts[1:], n) - 1
    return {
        "time_ms": times_ms[last].tolist(),
        "equity": equity[last].tolist(),
        "drawdown": np.minimum.reduceat(drawdown, starts).tolist(),
    }


def _input_failure(exc: Exception) -> dict:
    return {"status": "failed", "error": {"kind": "input", "message": str(exc), "text": str(exc)}}


def _result_dict(result: BacktestResult, with_details: bool) -> dict:
    out = result.to_dict(trades=with_details)
    out["daily_equity"] = None  # the chart series replaces it; keeps the answer small
    if with_details and result.equity is not None and result.drawdown is not None:
        out["series"] = downsample_series(result.times_ms, result.equity, result.drawdown, MAX_CHART_POINTS)
    return out


def backtest_with_series(strategy_cls: type, payload: dict) -> dict:
    """engine.run_job plus the equity/drawdown series, downsampled for charts."""
    try:
        candles = candles_from_payload(payload)
        result = run_backtest(strategy_cls, candles, payload.get("params") or {}, settings_from_payload(payload))
    except (BacktestInputError, CandleFileError, TypeError) as exc:
        return _input_failure(exc)
    except StrategyError as exc:
        return {"status": "failed", "error": exc.as_dict()}
    return _result_dict(result, with_details=True)


_GRID_STATE: dict[str, Any] = {}  # this sandbox's grid (a sandbox serves one): its candles, its indicator cache


def _grid_cache() -> IndicatorCache:
    return _GRID_STATE.setdefault("indicators", IndicatorCache())


def _grid_candles(payload: dict) -> pd.DataFrame | None:
    """The payload's candles, kept under payload["candles_key"] for the next chunks; a chunk without
    candles gets the kept ones of its key (None: this sandbox has not seen them, send them)."""
    key, sent = payload.get("candles_key"), payload.get("candles")
    if isinstance(sent, dict) and isinstance(sent.get("packed"), dict):
        sent = unpack_candles(sent["packed"])
    if sent is not None:
        candles = candles_from_payload({"candles": sent})
        if key:
            _GRID_STATE["candles"] = (key, candles)
        return candles
    kept = _GRID_STATE.get("candles")
    return kept[1] if kept is not None and kept[0] == key else None


def grid_chunk(strategy_cls: type, payload: dict) -> dict:
    """One backtest per entry of payload["params_list"] over the same candles: {"results": [...]},
    each {status, params, metrics, final_equity, trades (a count), error}. One failing combination
    does not stop the others. Unless payload["reuse_indicators"] is false, the runs share this
    sandbox's IndicatorCache (kept across the chunks of a grid: it matches inputs by content).
    Candles come once per sandbox (payload["candles_key"]); {"missing_candles": true} asks for them."""
    cpu_started = time.process_time()
    try:
        candles = _grid_candles(payload)
        settings = settings_from_payload(payload)
    except (BacktestInputError, CandleFileError, TypeError) as exc:
        return {"results": [_input_failure(exc)] * len(payload.get("params_list") or [])}
    if candles is None:
        return {"missing_candles": True}
    cache = _grid_cache() if payload.get("reuse_indicators", True) else None
    hits, misses = (cache.hits, cache.misses) if cache is not None else (0, 0)
    results = []
    for params in payload.get("params_list") or []:
        try:
            run = run_backtest(strategy_cls, candles, params, settings, indicators=cache)
            result = _result_dict(run, with_details=False)
        except (BacktestInputError, TypeError) as exc:
            result = _input_failure(exc)
        except StrategyError as exc:
            result = {"status": "failed", "error": exc.as_dict()}
        result.setdefault("params", params)  # resolved by the engine when it got that far
        results.append(result)
    answer = {"results": results, "cpu_seconds": time.process_time() - cpu_started}
    if cache is not None:
        answer |= {"indicator_hits": cache.hits - hits, "indicator_misses": cache.misses - misses}
    return answer
