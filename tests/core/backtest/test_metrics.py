import math

import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from core.backtest.metrics import (
    TradeOutcome,
    compute_metrics,
    daily_equity,
    daily_returns,
    longest_underwater_days,
)

DAY_MS = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def hourly_equity(days: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    times = T0 + 3_600_000 * np.arange(days * 24)
    equity = 10_000 * np.exp(np.cumsum(rng.normal(0.0002, 0.004, len(times))))
    return times, equity


def metrics_for(times, equity, trades=(), start=10_000.0):
    return compute_metrics(list(trades), times, equity, 100.0, 110.0, start, len(equity) // 2)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ratios_match_quantstats_on_the_same_daily_curve(seed):
    times, equity = hourly_equity(120, seed)
    metrics, _ = metrics_for(times, equity)
    returns = daily_returns(daily_equity(times, equity), 10_000.0)
    returns.index = returns.index.tz_localize(None)
    assert metrics["sharpe"] == pytest.approx(qs.stats.sharpe(returns, periods=365), rel=1e-9)
    assert metrics["sortino"] == pytest.approx(qs.stats.sortino(returns, periods=365), rel=1e-9)
    assert metrics["cagr_pct"] / 100 == pytest.approx(qs.stats.cagr(returns, periods=365), rel=1e-9)
    assert metrics["max_drawdown_pct"] / 100 == pytest.approx(qs.stats.max_drawdown(returns), rel=1e-9)
    assert metrics["calmar"] == pytest.approx(qs.stats.calmar(returns, periods=365), rel=1e-9)


def test_hand_computed_fixture():
    # one candle per day: 10000 -> 11000 -> 9900 -> 9900 (gap day) -> 10890
    times = np.array([T0, T0 + DAY_MS, T0 + 2 * DAY_MS, T0 + 4 * DAY_MS])
    equity = np.array([11_000.0, 9_900.0, 9_900.0, 10_890.0])
    trades = [TradeOutcome(100.0, 2.0, 1.0), TradeOutcome(-50.0, -1.0, 1.0), TradeOutcome(0.0, 0.0, 1.0)]
    metrics, notes = metrics_for(times, equity, trades)
    r = np.array([0.1, -0.1, 0.0, 0.0, 0.1])  # the gap day is filled with no change
    assert metrics["days"] == 5
    assert metrics["total_return_pct"] == pytest.approx(8.9, abs=1e-9)
    assert metrics["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365), abs=1e-9)
    assert metrics["sortino"] == pytest.approx(r.mean() / math.sqrt(0.01 / 5) * math.sqrt(365), abs=1e-9)
    assert metrics["max_drawdown_pct"] == pytest.approx(-10.0, abs=1e-9)
    assert metrics["max_drawdown_duration_days"] == 4  # 10890 is still below the 11000 peak
    assert metrics["cagr_pct"] is None and "30 days" in notes["cagr_pct"]
    assert metrics["calmar"] is None
    assert metrics["win_rate_pct"] == 50.0 and metrics["breakeven_trades"] == 1
    assert metrics["profit_factor"] == 2.0
    assert metrics["expectancy"] == pytest.approx(50 / 3)
    assert (metrics["avg_win"], metrics["avg_loss"]) == (100.0, -50.0)
    assert (metrics["best_trade_pct"], metrics["worst_trade_pct"]) == (2.0, -1.0)
    assert metrics["fees_paid"] == 3.0
    assert metrics["buy_and_hold_return_pct"] == pytest.approx(10.0)


def test_edge_cases_are_null_with_a_reason():
    times = T0 + DAY_MS * np.arange(40)
    flat = np.full(40, 10_000.0)
    metrics, notes = metrics_for(times, flat)
    assert metrics["num_trades"] == 0
    for key in (
        "sharpe",
        "sortino",
        "calmar",
        "profit_factor",
        "win_rate_pct",
        "expectancy",
        "avg_win",
        "best_trade_pct",
    ):
        assert metrics[key] is None and notes[key], key
    assert "zero variance" in notes["sharpe"]
    assert metrics["cagr_pct"] == 0.0 and metrics["max_drawdown_pct"] == 0.0
    rising = 10_000 * 1.01 ** np.arange(1, 41)
    metrics, notes = metrics_for(times, rising, [TradeOutcome(5.0, 1.0, 0.1)])
    assert metrics["profit_factor"] is None and notes["profit_factor"] == "infinite (no losing trade)"
    assert metrics["sortino"] is None and "no losing day" in notes["sortino"]
    assert metrics["calmar"] is None and notes["calmar"] == "no drawdown"
    assert metrics["win_rate_pct"] == 100.0


def test_underwater_duration_counts_an_unrecovered_run_to_the_end():
    days = pd.date_range("2024-01-01", periods=6, freq="D", tz="UTC")
    assert longest_underwater_days(pd.Series([11.0, 9, 12, 11, 10, 10], index=days), 10.0) == 3
