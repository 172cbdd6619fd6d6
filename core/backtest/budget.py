"""The time and memory budget of one backtest run in the sandbox, for the CLI and the workers alike.

A base plus an allowance per candle (1M candles: about 17 minutes of wall clock), while each call of
`init` or a decision method keeps its own budget of seconds (SandboxLimits.phase_seconds), so a
strategy that never returns is stopped within seconds, whatever the size of the run.
"""

from __future__ import annotations

from core.strategies.sandbox import SandboxLimits


def backtest_limits() -> SandboxLimits:
    return SandboxLimits(cpu_seconds=60, wall_seconds=120, seconds_per_candle=0.001, memory_mb=4096)
