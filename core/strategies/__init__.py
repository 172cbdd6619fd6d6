"""Strategies: the contract every user strategy is written to (see contract.py)."""

from core.strategies.contract import (
    Decision,
    ParamError,
    Position,
    Strategy,
    StrategyError,
    StrategyRuntime,
    crossed_above,
    crossed_below,
    resolve_params,
)

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
