"""Backtest metrics. Definitions, formulas and edge cases: docs/METRICS.md (keep both in step).

Ratios use a DAILY mark-to-market equity curve: the equity at the last candle close of each UTC
day, days without candles carried forward, the starting cash as the base of the first day's
return. Annualisation: 365 days (crypto trades every day).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

ANNUALIZATION_DAYS = 365
DAY_MS = 86_400_000
MIN_DAYS_FOR_CAGR = 30


@dataclass(frozen=True)
class TradeOutcome:
    """The part of a trade metrics need (the engine's Trade has these attributes)."""

    pnl: float
    return_pct: float
    fees: float


def daily_equity(times_ms: np.ndarray, equity: np.ndarray) -> pd.Series:
    """Equity at the last close of each UTC day (by candle open time), every calendar day present (a day
    without candles repeats the day before)."""
    days = np.asarray(times_ms, dtype=np.int64) // DAY_MS  # sorted
    last = np.append(np.flatnonzero(np.diff(days)), len(days) - 1)  # the last candle of each day present
    present = days[last] - days[0]
    filled = np.zeros(int(present[-1]) + 1, dtype=np.int64)
    filled[present] = np.arange(len(present))
    filled = np.maximum.accumulate(filled)  # a missing day takes the index of the day before
    calendar = pd.date_range(pd.Timestamp(int(days[0]) * DAY_MS, unit="ms", tz="UTC"), periods=len(filled), freq="D")
    return pd.Series(np.asarray(equity)[last][filled], index=calendar)


def daily_returns(daily: pd.Series, start_cash: float) -> pd.Series:
    values = np.concatenate([[start_cash], daily.to_numpy(dtype="float64")])
    return pd.Series(values[1:] / values[:-1] - 1.0, index=daily.index)


def drawdown(equity: np.ndarray, start_cash: float) -> np.ndarray:
    """(E_t - peak_t) / peak_t, <= 0; the starting cash counts as the first peak."""
    peak = np.maximum.accumulate(np.concatenate([[start_cash], equity]))[1:]
    return equity / peak - 1.0


def longest_underwater_days(daily: pd.Series, start_cash: float) -> int:
    """Longest run of consecutive days below the running peak (an unrecovered run counts to the end)."""
    under = drawdown(daily.to_numpy(dtype="float64"), start_cash) < 0
    longest = run = 0
    for flag in under:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    return longest


def sharpe(returns: np.ndarray) -> tuple[float | None, str | None]:
    if len(returns) < 2:
        return None, "fewer than 2 days"
    sd = float(np.std(returns, ddof=1))
    if sd == 0 or not math.isfinite(sd):
        return None, "zero variance of daily returns"
    return float(np.mean(returns)) / sd * math.sqrt(ANNUALIZATION_DAYS), None


def sortino(returns: np.ndarray) -> tuple[float | None, str | None]:
    if len(returns) < 2:
        return None, "fewer than 2 days"
    downside = math.sqrt(float(np.sum(np.minimum(returns, 0.0) ** 2)) / len(returns))
    if downside == 0:
        return None, "no losing day (zero downside deviation)"
    return float(np.mean(returns)) / downside * math.sqrt(ANNUALIZATION_DAYS), None


def cagr_pct(start: float, end: float, days: int) -> tuple[float | None, str | None]:
    if days < MIN_DAYS_FOR_CAGR:
        return None, f"n/a (< {MIN_DAYS_FOR_CAGR} days)"
    if end <= 0:
        return -100.0, None
    return ((end / start) ** (ANNUALIZATION_DAYS / days) - 1.0) * 100.0, None


def _trade_metrics(trades: Sequence, notes: dict) -> dict:
    pnls = np.array([t.pnl for t in trades], dtype="float64")
    rets = np.array([t.return_pct for t in trades], dtype="float64")
    wins, losses = pnls[pnls > 0], pnls[pnls < 0]
    out: dict[str, float | None] = {
        "num_trades": len(trades),
        "winning_trades": int(wins.size),
        "losing_trades": int(losses.size),
        "breakeven_trades": int(np.sum(pnls == 0)),
        "fees_paid": float(sum(t.fees for t in trades)),
    }
    decided = wins.size + losses.size
    out["win_rate_pct"] = wins.size / decided * 100.0 if decided else None
    if not decided:
        notes["win_rate_pct"] = "no winning or losing trade"
    if losses.size:
        out["profit_factor"] = float(wins.sum()) / abs(float(losses.sum()))
    else:
        out["profit_factor"] = None
        notes["profit_factor"] = "infinite (no losing trade)" if wins.size else "no closed trade with a P&L"
    for key, values, reason in (
        ("expectancy", pnls, "no trade"),
        ("expectancy_pct", rets, "no trade"),
        ("avg_win", wins, "no winning trade"),
        ("avg_loss", losses, "no losing trade"),
    ):
        out[key] = float(values.mean()) if values.size else None
        if not values.size:
            notes[key] = reason
    out["best_trade_pct"] = float(rets.max()) if rets.size else None
    out["worst_trade_pct"] = float(rets.min()) if rets.size else None
    if not rets.size:
        notes["best_trade_pct"] = notes["worst_trade_pct"] = "no trade"
    return out


def compute_metrics(
    trades: Sequence,
    times_ms: np.ndarray,
    equity: np.ndarray,
    first_open: float,
    last_close: float,
    start_cash: float,
    candles_in_market: int,
    daily: pd.Series | None = None,
    intraday_drawdown: np.ndarray | None = None,
) -> tuple[dict, dict]:
    """(metrics, notes): notes give the reason of every metric that is None. `daily` and
    `intraday_drawdown`: daily_equity() and drawdown() of `equity` when the caller has them."""
    notes: dict[str, str] = {}
    daily = daily_equity(times_ms, equity) if daily is None else daily
    returns = daily_returns(daily, start_cash).to_numpy()
    final = float(equity[-1])
    days = len(returns)
    metrics: dict = {
        "start_cash": start_cash,
        "final_equity": final,
        "total_return_pct": (final / start_cash - 1.0) * 100.0,
        "days": days,
        "annualization_days": ANNUALIZATION_DAYS,
    }
    for key, (value, reason) in (
        ("cagr_pct", cagr_pct(start_cash, final, days)),
        ("sharpe", sharpe(returns)),
        ("sortino", sortino(returns)),
    ):
        metrics[key] = value
        if reason:
            notes[key] = reason
    daily_dd = drawdown(daily.to_numpy(dtype="float64"), start_cash)
    metrics["max_drawdown_pct"] = float(daily_dd.min()) * 100.0
    metrics["max_drawdown_duration_days"] = longest_underwater_days(daily, start_cash)
    if intraday_drawdown is None:
        intraday_drawdown = drawdown(equity, start_cash)
    metrics["max_drawdown_intraday_pct"] = float(intraday_drawdown.min()) * 100.0
    if metrics["cagr_pct"] is None:
        metrics["calmar"], notes["calmar"] = None, "no CAGR (" + notes["cagr_pct"] + ")"
    elif metrics["max_drawdown_pct"] == 0:
        metrics["calmar"], notes["calmar"] = None, "no drawdown"
    else:
        metrics["calmar"] = metrics["cagr_pct"] / abs(metrics["max_drawdown_pct"])
    metrics.update(_trade_metrics(trades, notes))
    metrics["exposure_pct"] = candles_in_market / len(equity) * 100.0
    metrics["buy_and_hold_return_pct"] = (last_close / first_open - 1.0) * 100.0
    return metrics, notes
