"""Strategies: the contract every user strategy is written to (see contract.py; runtime.py binds one to candles)."""

from core.strategies.contract import (
    Decision,
    ParamError,
    Position,
    Strategy,
    StrategyError,
    crossed_above,
    crossed_below,
    resolve_params,
)
from core.strategies.runtime import StrategyRuntime

__all__ = [
    "Decision",
    "ParamError",
    "Position",
    "Strategy",
    "StrategyError",
    "StrategyRuntime",
    "crossed_above",
    "crossed_below",
    "resolve_params",
]
