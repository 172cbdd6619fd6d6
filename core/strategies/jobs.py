"""Trusted job functions that run inside the sandbox child: `fn(strategy_cls, payload) -> dict`.

Payload candles are rows `[open_time_ms, open, high, low, close, volume]` (numbers or numeric
strings), oldest first — plain data so they cross the process boundary as JSON.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from core.strategies.contract import FLAT, Position, StrategyError, resolve_params
from core.strategies.runtime import StrategyRuntime

CANDLE_COLUMNS = ["open_time", "open", "high", "low", "close", "volume"]


def candles_frame(rows: Any) -> pd.DataFrame:
    """Rows from a payload as the DataFrame StrategyRuntime expects; refuses malformed input."""
    if not isinstance(rows, list) or not rows:
        raise ValueError("payload 'candles' must be a non-empty list of [open_time, open, high, low, close, volume]")
    if any(not isinstance(row, (list, tuple)) or len(row) != 6 for row in rows):
        raise ValueError("each candle must be [open_time, open, high, low, close, volume]")
    frame = pd.DataFrame(rows, columns=CANDLE_COLUMNS)
    try:
        frame["open_time"] = frame["open_time"].astype("int64")
        for column in CANDLE_COLUMNS[1:]:
            frame[column] = frame[column].astype("float64")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"candles must hold numbers: {exc}") from None
    prices = frame[CANDLE_COLUMNS[1:]].to_numpy()
    if not all(math.isfinite(v) for v in prices.ravel()):
        raise ValueError("candles must hold finite numbers")
    if not frame["open_time"].is_monotonic_increasing:
        raise ValueError("candles must be sorted by open_time, oldest first")
    return frame


def _position(data: Any) -> Position:
    if not data:
        return FLAT
    if not isinstance(data, dict) or data.get("side") not in (None, "long", "short"):
        raise ValueError("payload 'position' must be {side: 'long'|'short'|null, size, entry_price}")
    return Position(
        side=data.get("side"),
        size=float(data.get("size") or 0.0),
        entry_price=None if data.get("entry_price") is None else float(data["entry_price"]),
        entry_time_ms=data.get("entry_time_ms"),
    )


def _raise_with_place(exc: StrategyError) -> None:
    # The sandbox child reports `.candle_time` and `.line` of the exception it receives.
    exc.candle_time = exc.candle_time_ms  # type: ignore[attr-defined]
    raise exc


def describe(strategy_cls: type, payload: dict) -> dict:
    """Class name, default params and the params resolved with payload['params'] overrides."""
    return {
        "class_name": strategy_cls.__name__,
        "params": dict(getattr(strategy_cls, "params", {}) or {}),
        "resolved_params": resolve_params(strategy_cls, payload.get("params")),
    }


def evaluate_last(strategy_cls: type, payload: dict) -> dict:
    """The decision at the close of the last candle: what a live bot asks on every tick.

    payload: {"candles": rows, "params": {...}?, "position": {side, size, entry_price}?}
    """
    frame = candles_frame(payload.get("candles"))
    try:
        runtime = StrategyRuntime(strategy_cls, frame, payload.get("params"))
        decision = runtime.decide_at(len(frame) - 1, _position(payload.get("position")))
    except StrategyError as exc:
        _raise_with_place(exc)
    return {
        "candle_time": int(frame["open_time"].iloc[-1]),
        "exit": decision.exit,
        "enter": decision.enter,
        "size_fraction": decision.size_fraction,
        "stop_loss": decision.stop_loss,
        "take_profit": decision.take_profit,
        "trailing_stop": decision.trailing_stop,
        "take_profit_ladder": None
        if decision.take_profit_ladder is None
        else [list(r) for r in decision.take_profit_ladder],
    }


def dry_run(strategy_cls: type, payload: dict) -> dict:
    """Pre-flight check: ask for a decision at every candle while flat; count the entries.

    Finds the strategy that raises or answers nonsense on the 500th candle before a bot does.
    """
    frame = candles_frame(payload.get("candles"))
    entries = {"long": 0, "short": 0}
    try:
        runtime = StrategyRuntime(strategy_cls, frame, payload.get("params"))
        for index in range(len(frame)):
            decision = runtime.decide_at(index, FLAT)
            if decision.enter:
                entries[decision.enter] += 1
    except StrategyError as exc:
        _raise_with_place(exc)
    return {"candles": len(frame), "long_entries": entries["long"], "short_entries": entries["short"]}


def sandbox_report(strategy_cls: type, payload: dict) -> dict:
    """What the strategy's process can see of its host: for the admin status page and the tests."""
    import os

    return {"uid": os.getuid(), "environment": sorted(os.environ), "cwd": os.getcwd(), "pid": os.getpid()}
