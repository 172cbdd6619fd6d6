"""The strategy contract shared by backtests and live bots: what a user strategy sees.

A strategy subclasses `Strategy`, computes its indicators once in `init()` over the whole series,
and answers per closed candle through `should_long/should_short/should_exit` (+ `position_size`,
`stop_loss`, `take_profit`, `trailing_stop`, `take_profit_ladder` when it enters). runtime.py binds a
strategy to candles; vectorizer.py evaluates a pure decision method over whole arrays at once.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

DECISION_METHODS = ("should_long", "should_short", "should_exit")
ORDER_METHODS = ("position_size", "stop_loss", "take_profit", "trailing_stop", "take_profit_ladder")
# The trails a strategy's trailing_stop() may answer, in %: core/exchanges/models.TRAIL_PCT_RANGE (what
# Binance's trailingDelta takes), repeated here because the sandbox's contract imports no venue code.
TRAIL_PCT_MIN, TRAIL_PCT_MAX = 0.1, 20.0
# A take_profit_ladder()'s rungs: core/orders/ladder.MIN_RUNGS/MAX_RUNGS (what a live bot places), repeated here
# for the same reason.
LADDER_RUNGS_MIN, LADDER_RUNGS_MAX = 2, 10
DATA_FIELDS = ("open", "high", "low", "close", "volume", "time")


def format_candle_time(time_ms: int | None) -> str | None:
    if time_ms is None:
        return None
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class StrategyError(Exception):
    """A strategy that failed or answered nonsense, with where it happened."""

    def __init__(
        self,
        message: str,
        method: str | None = None,
        candle_time_ms: int | None = None,
        line: int | None = None,
        kind: str = "invalid_return",
    ):
        self.message = message
        self.method = method
        self.candle_time_ms = candle_time_ms
        self.line = line
        self.kind = kind
        parts = ["parameters" if method == "params" else f"{method}()" if method else "strategy"]
        if candle_time_ms is not None:
            parts.append(f"at candle {format_candle_time(candle_time_ms)}")
        if line is not None:
            parts.append(f"(line {line})")
        self.place = " ".join(parts)  # "should_long() at candle 2025-05-20 10:31:00 UTC (line 12)"
        super().__init__(f"{self.place}: {message}")

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "method": self.method,
            "candle_time_ms": self.candle_time_ms,
            "candle_time": format_candle_time(self.candle_time_ms),
            "line": self.line,
            "message": self.message,
            "text": str(self),
        }


class ParamError(StrategyError):
    def __init__(self, message: str):
        super().__init__(message, method="params", kind="params")


@dataclass(frozen=True)
class Position:
    """What the strategy holds: side "long", "short" or None (flat), base size and entry price."""

    side: str | None = None
    size: float = 0.0
    entry_price: float | None = None
    entry_time_ms: int | None = None

    @property
    def is_flat(self) -> bool:
        return self.side is None

    @property
    def is_long(self) -> bool:
        return self.side == "long"

    @property
    def is_short(self) -> bool:
        return self.side == "short"


FLAT = Position()


@dataclass(frozen=True)
class CandleData:
    """Candle columns. Full pandas Series inside `init()`; numpy views ending at "now" afterwards."""

    open: Any
    high: Any
    low: Any
    close: Any
    volume: Any
    time: Any


class Strategy:
    """Subclass this. See docs and `core/strategies/examples/sma_cross.py`."""

    # Subclasses set a dict of defaults; an instance holds its resolved values read-only.
    params: Mapping[str, Any] = {}

    def __init__(self, data: CandleData, params: Mapping[str, Any]):
        self.data = data
        self.params = types.MappingProxyType(dict(params))
        self.__dict__["_position"] = FLAT

    @property
    def position(self) -> Position:
        return self.__dict__["_position"]

    def init(self) -> None:
        """Compute indicators over the whole series with `self.indicator(...)`."""

    def indicator(self, func: Callable, *args, **kwargs) -> np.ndarray:
        """Run `func(*args, **kwargs)` once over the whole series; one float per candle.

        In a grid, an equal call of an earlier run is answered from its cache (indicator_cache.py)."""
        cache = self.__dict__.get("_indicator_cache")
        if cache is None:
            values = _indicator_values(func(*args, **kwargs))
        else:
            values = cache.compute(func, args, kwargs, lambda: _indicator_values(func(*args, **kwargs)))
        length = len(self.data.close)
        if values.ndim != 1 or len(values) != length:
            raise StrategyError(
                f"indicator {getattr(func, '__name__', func)!r} returned shape {values.shape}; "
                f"it must return one value per candle ({length})",
                method="init",
                kind="indicator",
            )
        return values

    def should_long(self) -> bool:
        return False

    def should_short(self) -> bool:
        return False

    def should_exit(self) -> bool:
        return False

    def position_size(self) -> float:
        return 1.0

    def stop_loss(self) -> float | None:
        return None

    def take_profit(self) -> float | None:
        return None

    def trailing_stop(self) -> float | None:
        """A trail in % (0.1 to 20): the stop follows the best price since the entry. Instead of stop_loss()
        and take_profit(): a spot venue cannot hold a trailing stop and another exit on the same coins."""
        return None

    def take_profit_ladder(self) -> list[tuple[float, float]] | None:
        """Several partial targets instead of take_profit(): `[(pct_above_entry, size_pct), ...]`, 2 to 10
        rungs, each target > 0 % from the entry's fill price (below it for a short), the sizes adding up to
        100 %. Allowed with stop_loss() (the stop then covers what the rungs have not sold), not with
        take_profit() or trailing_stop()."""
        return None


def _indicator_values(result: Any) -> np.ndarray:
    if isinstance(result, pd.DataFrame) and result.shape[1] == 1:
        result = result.iloc[:, 0]
    return np.asarray(result, dtype="float64")


def _last_two(x) -> tuple[Any, Any] | None:
    if isinstance(x, (int, float, np.number)) and not isinstance(x, bool):
        return x, x
    if len(x) < 2:
        return None
    return x[-2], x[-1]


def _crossed(a, b, above: bool) -> bool:
    for x in (a, b):  # over whole arrays a view is a vectorizer.SymbolicSeries, which knows how to cross
        symbolic_cross = getattr(type(x), "symbolic_cross", None)
        if symbolic_cross is not None:
            return symbolic_cross(a, b, above)
    pair_a, pair_b = _last_two(a), _last_two(b)
    if pair_a is None or pair_b is None:
        return False
    (a_prev, a_now), (b_prev, b_now) = pair_a, pair_b
    if above:
        return bool(a_prev <= b_prev and a_now > b_now)
    return bool(a_prev >= b_prev and a_now < b_now)


def crossed_above(a, b) -> bool:
    """True on the candle where `a` goes from <= `b` to > `b` (a, b: series views or numbers)."""
    return _crossed(a, b, above=True)


def crossed_below(a, b) -> bool:
    """True on the candle where `a` goes from >= `b` to < `b` (a, b: series views or numbers)."""
    return _crossed(a, b, above=False)


def resolve_params(strategy_cls: type[Strategy], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overridden by user values; each value must have its default's type."""
    defaults = getattr(strategy_cls, "params", {}) or {}
    if not isinstance(defaults, Mapping) or not all(isinstance(k, str) for k in defaults):
        raise ParamError("`params` must be a dict of name -> default value")
    resolved = dict(defaults)
    for name, value in (overrides or {}).items():
        if name not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise ParamError(f"unknown parameter {name!r} (known: {known})")
        resolved[name] = _coerce_param(name, value, defaults[name])
    return resolved


_TRUE_WORDS = {"true", "1", "yes", "on"}
_FALSE_WORDS = {"false", "0", "no", "off"}


def _coerce_param(name: str, value: Any, default: Any) -> Any:
    def bad(expected: str) -> ParamError:
        return ParamError(f"parameter {name!r} must be {expected}, got {value!r}")

    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
            return value.strip().lower() in _TRUE_WORDS
        raise bad("true or false")
    if isinstance(default, int):
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise bad("an integer") from None
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad("an integer")
    if isinstance(default, float):
        if isinstance(value, bool):
            raise bad("a number")
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise bad("a number") from None
        if not math.isfinite(number):
            raise bad("a finite number")
        return number
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad("text")
        return value
    return value


@dataclass(frozen=True)
class Decision:
    """What the strategy decided at a close; the engine fills it at the next price."""

    exit: bool = False
    enter: str | None = None
    size_fraction: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None  # a trail in %, instead of a stop-loss and a take-profit
    take_profit_ladder: tuple[tuple[float, float], ...] | None = None  # (pct from the entry, size %) per rung


def ladder_problem(value: Any) -> str | None:
    """Why `value` is not a take-profit ladder (2-10 pairs (pct > 0, size_pct > 0), sizes adding up to 100), or
    None when it is one. The sizes' sum is compared with a float tolerance: 100 / 3 three times is 100."""
    if not isinstance(value, (list, tuple)) or not LADDER_RUNGS_MIN <= len(value) <= LADDER_RUNGS_MAX:
        return f"a list of {LADDER_RUNGS_MIN} to {LADDER_RUNGS_MAX} rungs (pct_above_entry, size_pct)"
    for number, rung in enumerate(value, 1):
        if not isinstance(rung, (list, tuple)) or len(rung) != 2:
            return f"rungs as (pct_above_entry, size_pct) pairs: rung {number} is not a pair"
        for what, number_value in zip(("pct_above_entry", "size_pct"), rung, strict=True):
            if (
                isinstance(number_value, (bool, np.bool_))
                or not isinstance(number_value, (int, float, np.integer, np.floating))
                or not (math.isfinite(number_value) and number_value > 0)
            ):
                return f"rungs of positive numbers: rung {number}'s {what} is {number_value!r}"
    total = math.fsum(float(rung[1]) for rung in value)
    if abs(total - 100.0) > 1e-6:
        return f"rung sizes adding up to 100 (%), not {total:g}"
    return None
