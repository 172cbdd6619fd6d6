"""Per-phase time budgets inside the sandbox child: a strategy method that never returns is stopped.

While a job runs, a SIGALRM timer ticks a few times a second. Each tick finds the outermost frame of
user code on the stack (its method: `init`, `should_long`, ... or `<module>` while loading); when the
same invocation has been running longer than its budget, the tick raises PhaseTimeout with the line
the strategy was on. `init` gets a base plus a per-candle allowance (it computes over the whole
series); every other call gets the base. PhaseTimeout derives from BaseException, so the
`except Exception` of the contract and of user code does not swallow it; a bare `except:` that
does is caught again on the next tick, and the parent's wall clock remains the backstop.
"""

from __future__ import annotations

import signal
import time
from types import FrameType

TICK_SECONDS = 0.2
STRATEGY_FILENAME = "<strategy>"


class PhaseTimeout(BaseException):
    """A strategy method ran past its budget."""

    def __init__(self, method: str, budget: float, line: int | None):
        self.method, self.budget, self.line = method, budget, line
        super().__init__(f"the strategy did not finish `{method}` within {budget:g} s")


def _phase_name(code_name: str) -> str:
    return "loading" if code_name == "<module>" else code_name


class PhaseTimer:
    """Arm around each job call; `candles` sets the allowance of `init`."""

    def __init__(self, base_seconds: float, init_seconds_per_candle: float):
        self.base = float(base_seconds)
        self.per_candle = float(init_seconds_per_candle)
        self.init_budget = self.base
        self._outer: FrameType | None = None
        self._since = 0.0

    def __enter__(self) -> PhaseTimer:
        self._outer = None
        signal.signal(signal.SIGALRM, self._tick)
        signal.setitimer(signal.ITIMER_REAL, TICK_SECONDS, TICK_SECONDS)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        self._outer = None

    def for_candles(self, candles: int) -> PhaseTimer:
        self.init_budget = round(self.base + self.per_candle * max(0, candles), 1)
        return self

    def _tick(self, signum: int, frame: FrameType | None) -> None:
        outer = inner = None
        while frame is not None:
            if frame.f_code.co_filename == STRATEGY_FILENAME:
                outer = frame
                inner = inner or frame
            frame = frame.f_back
        now = time.monotonic()
        if outer is not self._outer:
            self._outer, self._since = outer, now
            return
        if outer is None or inner is None:
            return
        method = _phase_name(outer.f_code.co_name)
        budget = self.init_budget if method == "init" else self.base
        if now - self._since > budget:
            raise PhaseTimeout(method, budget, inner.f_lineno)


def candles_in(payload: object) -> int:
    """How many candles a job payload carries (rows, or a mapping of column lists), or stands for: a grid's
    later chunks name the candles their sandbox already holds, with their count (core/backtest/grid.py)."""
    if isinstance(payload, dict) and isinstance(payload.get("candle_count"), int):
        return payload["candle_count"]
    candles = payload.get("candles") if isinstance(payload, dict) else None
    if isinstance(candles, list):
        return len(candles)
    if isinstance(candles, dict) and isinstance(candles.get("open_time"), list):
        return len(candles["open_time"])
    return 0
