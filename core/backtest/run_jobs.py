"""Jobs the web's backtest runs execute INSIDE the sandbox: `fn(strategy_cls, payload) -> dict`.

Payload as for engine.run_job: {candles (column lists), params, fee, slippage_bps, cash, start_ms,
end_ms}. Keep imports to what the sandbox child preloads (numpy, pandas, the engine): this module is
imported before the child locks itself down.
"""

from __future__ import annotations

import numpy as np

from core.backtest.engine import (
    BacktestInputError,
    BacktestResult,
    candles_from_payload,
    run_backtest,
    settings_from_payload,
)
from core.candles.csv_io import CandleFileError
from core.strategies.contract import StrategyError

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


def grid_chunk(strategy_cls: type, payload: dict) -> dict:
    """One backtest per entry of payload["params_list"] over the same candles: {"results": [...]},
    each {status, params, metrics, final_equity, trades (a count), error}. One failing combination
    does not stop the others."""
    try:
        candles = candles_from_payload(payload)
        settings = settings_from_payload(payload)
    except (BacktestInputError, CandleFileError, TypeError) as exc:
        return {"results": [_input_failure(exc)] * len(payload.get("params_list") or [])}
    results = []
    for params in payload.get("params_list") or []:
        try:
            result = _result_dict(run_backtest(strategy_cls, candles, params, settings), with_details=False)
        except (BacktestInputError, TypeError) as exc:
            result = _input_failure(exc)
        except StrategyError as exc:
            result = {"status": "failed", "error": exc.as_dict()}
        result.setdefault("params", params)  # resolved by the engine when it got that far
        results.append(result)
    return {"results": results}
