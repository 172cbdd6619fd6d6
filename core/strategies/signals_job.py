"""Sandbox job behind "Try on recent candles": the strategy's entries and exits over some candles.

It runs the backtest engine (the same decisions a bot would take, fills no earlier than the next
price) and reports each trade as an entry signal and an exit signal for the chart.
Payload: {"candles": rows [open_time, open, high, low, close, volume] oldest first, "params": {...}}.
"""

from __future__ import annotations

from typing import Any

from core.backtest.engine import BacktestSettings, run_backtest
from core.strategies.contract import StrategyError
from core.strategies.jobs import candles_frame


def _raise_failure(error: dict[str, Any]) -> None:
    exc = StrategyError(
        error.get("message") or "the strategy failed",
        method=error.get("method"),
        candle_time_ms=error.get("candle_time_ms"),
        line=error.get("line"),
        kind=error.get("kind") or "invalid_return",
    )
    # The sandbox child reports `.candle_time` and `.line` of the exception it receives.
    exc.candle_time = error.get("candle_time")  # type: ignore[attr-defined]
    raise exc


def _signals_of(trade: dict[str, Any]) -> list[dict[str, Any]]:
    entry = {
        "time": trade["entry_time_ms"],
        "kind": "entry",
        "side": trade["side"],
        "price": trade["entry_price"],
        "reason": "",
    }
    if trade["exit_reason"] == "end_of_data":
        return [entry]  # still open at the last candle: the engine's closing fill is no signal
    exit_ = {
        "time": trade["exit_time_ms"],
        "kind": "exit",
        "side": trade["side"],
        "price": trade["exit_price"],
        "reason": trade["exit_reason"],
        "pnl": trade["pnl"],
    }
    return [entry, exit_]


def signals(strategy_cls: type, payload: dict) -> dict:
    frame = candles_frame(payload.get("candles"))
    result = run_backtest(strategy_cls, frame, payload.get("params") or {}, BacktestSettings())
    if result.status != "ok":
        _raise_failure(result.error or {})
    trades = [trade.as_dict() for trade in result.trades]
    found = [signal for trade in trades for signal in _signals_of(trade)]
    metrics = result.metrics or {}
    return {
        "signals": found,
        "trades": len(trades),
        "summary": {
            "candles": len(frame),
            "final_equity": result.final_equity,
            "total_return_pct": metrics.get("total_return_pct"),
            "win_rate_pct": metrics.get("win_rate_pct"),
        },
    }
