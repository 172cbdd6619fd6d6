"""What the backtest result pages draw: the price chart (candles merged into at most MAX_CHART_BARS bars,
trade markers, equity and drawdown series) and the grid heat-map (cells with their colours)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from core.backtest.run_params import LOWER_IS_BETTER, load_candles
from core.backtest.run_results import finite_number
from core.models import BacktestRun

MAX_CHART_BARS = 5000


def _bar_buckets(times: np.ndarray, max_bars: int) -> np.ndarray:
    """Start index of each chart bar: candles merged k at a time when there are more than max_bars."""
    k = max(1, math.ceil(len(times) / max_bars))
    return np.arange(0, len(times), k)


def chart_data(session: Session, run: BacktestRun, max_bars: int = MAX_CHART_BARS) -> dict:
    """Candles (merged into at most max_bars bars), trade markers on them, equity and drawdown; times in s."""
    candles = load_candles(session, run.venue, run.symbol, run.timeframe, run.start_ms, run.end_ms)
    bars: list[dict] = []
    markers: list[dict] = []
    if candles["open_time"]:
        t = np.asarray(candles["open_time"], dtype="int64")
        starts = _bar_buckets(t, max_bars)
        ends = np.append(starts[1:], len(t)) - 1
        o, h, lo, c = (np.asarray(candles[k], dtype="float64") for k in ("open", "high", "low", "close"))
        highs, lows = np.maximum.reduceat(h, starts), np.minimum.reduceat(lo, starts)
        bar_times = t[starts] // 1000
        bars = [
            {"time": int(bt), "open": float(o[s]), "high": float(hi), "low": float(lw), "close": float(c[e])}
            for bt, s, e, hi, lw in zip(bar_times, starts, ends, highs, lows, strict=True)
        ]
        markers = _trade_markers(run.trades or [], t[starts])
    series = run.series or {"time_ms": [], "equity": [], "drawdown": []}
    seconds = [int(x) // 1000 for x in series["time_ms"]]
    return {
        "candles": bars,
        "markers": markers,
        "equity": [{"time": s, "value": v} for s, v in zip(seconds, series["equity"], strict=True)],
        "drawdown": [{"time": s, "value": v * 100.0} for s, v in zip(seconds, series["drawdown"], strict=True)],
    }


EXIT_LABELS = {
    "stop_loss": "SL",
    "take_profit": "TP",
    "trailing_stop": "TS",
    "end_of_data": "end",
}  # signal exits: a bare circle


def _trade_markers(trades: list[dict], bar_start_ms: np.ndarray) -> list[dict]:
    def bar_time(ms: int) -> int:
        i = max(0, int(np.searchsorted(bar_start_ms, ms, side="right")) - 1)
        return int(bar_start_ms[i]) // 1000

    markers = []
    for trade in trades:
        long = trade.get("side") == "long"
        markers.append(
            {
                "time": bar_time(trade["entry_time_ms"]),
                "position": "belowBar" if long else "aboveBar",
                "color": "#2fbf71" if long else "#f0506e",
                "shape": "arrowUp" if long else "arrowDown",
                "text": "L" if long else "S",
            }
        )
        if trade.get("exit_time_ms"):
            markers.append(
                {
                    "time": bar_time(trade["exit_time_ms"]),
                    "position": "aboveBar" if long else "belowBar",
                    "color": "#e0a526",
                    "shape": "circle",
                    "text": EXIT_LABELS.get(trade.get("exit_reason"), ""),
                }
            )
    markers.sort(key=lambda m: m["time"])
    return markers


@dataclass
class Heatmap:
    """A table of one metric over the grid: rows are the first parameter, columns the second."""

    metric: str
    row_param: str
    col_param: str | None
    row_values: list
    col_values: list
    cells: list[list[dict]]  # {value, color, params, error}
    others: list[str]  # parameters beyond the first two (the best value over them is shown)


def grid_heatmap(run: BacktestRun, metric: str | None = None) -> Heatmap | None:
    metric = metric or run.grid_metric or "total_return_pct"
    grid = run.grid or {}
    if not grid or not run.grid_results:
        return None
    names = list(grid)
    row_param, col_param = names[0], (names[1] if len(names) > 1 else None)
    col_values = grid[col_param] if col_param else [None]
    sign = -1 if metric in LOWER_IS_BETTER else 1
    best: dict[tuple, dict] = {}
    for entry in run.grid_results:
        key = (
            _grid_key(entry["params"].get(row_param)),
            _grid_key(entry["params"].get(col_param)) if col_param else None,
        )
        value = (entry.get("metrics") or {}).get(metric) if entry["status"] == "ok" else None
        current = best.get(key)
        if current is None or (
            finite_number(value) and (not finite_number(current["value"]) or sign * value > sign * current["value"])
        ):
            best[key] = {
                "value": value if finite_number(value) else None,
                "params": entry["params"],
                "error": entry.get("error"),
            }
    values = [c["value"] for c in best.values() if c["value"] is not None]
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    cells = []
    for rv in grid[row_param]:
        row = []
        for cv in col_values:
            cell = dict(
                best.get((_grid_key(rv), _grid_key(cv) if col_param else None))
                or {"value": None, "params": {}, "error": None}
            )
            cell["color"] = _heat_color(cell["value"], low, high, sign)
            row.append(cell)
        cells.append(row)
    return Heatmap(metric, row_param, col_param, grid[row_param], col_values, cells, names[2:])


def _grid_key(value: Any) -> Any:
    # Coerced values (10 vs 10.0 vs "10") must land in the same cell.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def _heat_color(value: float | None, low: float, high: float, sign: int) -> str:
    if value is None:
        return "transparent"
    share = 0.5 if high == low else (value - low) / (high - low)
    if sign < 0:
        share = 1.0 - share
    hue = int(round(share * 130))  # red (bad) .. green (good)
    return f"hsl({hue} 55% 32%)"
