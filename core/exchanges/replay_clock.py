"""The market clock of a simulator that replays a candle file, as the other processes see it.

A replaying simulator (sim/spot/replay.py) runs its market `speed` times faster than the wall clock,
from the file's first open time; its `/sim/health` describes that clock (`replay: {start_ms, end_ms,
speed, wall_start, base_ms, base_wall, gate_ms}`: the market time `base_ms` at the wall time `base_wall`,
never past `gate_ms`; `wall_start` null while the replay is held). The feeds process uses this view as
"the venue's time": which minute closed last, how old a candle is. The view asks again every
REFRESH_S; in between it extrapolates, never past the gate, so it can lag the market but not lead it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

REFRESH_S = 0.25


def market_seconds(described: dict[str, Any], wall: float) -> float:
    """Market time in seconds at `wall` for a described replay clock."""
    if described.get("wall_start") is None:
        return float(described["start_ms"] / 1000)
    market = described["base_ms"] / 1000 + (wall - float(described["base_wall"])) * float(described["speed"])
    limits = [described["end_ms"] / 1000] + ([described["gate_ms"] / 1000] if described.get("gate_ms") else [])
    return float(min([market, *limits]))


class ReplayClockView:
    """Callable like time.time, in the replay's market seconds; asks the simulator again every REFRESH_S."""

    def __init__(self, health_url: str, described: dict[str, Any], wall: Callable[[], float] = time.time):
        self.health_url = health_url
        self.described = described
        self.wall = wall
        self._asked = wall()

    def __call__(self) -> float:
        now = self.wall()
        if now - self._asked >= REFRESH_S:
            self._asked = now
            fresh = _replay_of(self.health_url)
            if fresh is not None:
                self.described = fresh
        return market_seconds(self.described, now)


def _replay_of(health_url: str) -> dict[str, Any] | None:
    try:
        response = requests.get(health_url, timeout=5)
        response.raise_for_status()
        replay = response.json().get("replay")
    except (requests.RequestException, ValueError, AttributeError):
        return None
    return replay if isinstance(replay, dict) else None


def replay_clock(sim_url: str) -> ReplayClockView | None:
    """The clock of the simulator at sim_url when it replays a file; None when its market is synthetic."""
    health_url = sim_url.rstrip("/") + "/sim/health"
    described = _replay_of(health_url)
    return ReplayClockView(health_url, described) if described is not None else None
