"""MISS detection: one alert is expected per period of the webhook's timeframe, aligned to UTC epochs.

An alert received inside period k is a "hit" for k. If k got none, an alert received within the grace
after k's end is "late" for k (and no longer counts for k+1). Past the grace, k is a "miss".
Three misses in a row pause the webhook.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

TIMEFRAME_SECONDS = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "1d": 86400,
}
MISSES_BEFORE_PAUSE = 3
# Progressive grace: the base (15 s by default) for short timeframes, 5 % of the period for long ones
# (TradingView fires later on long bars under load), never more than 5 minutes.
GRACE_SHARE = 0.05
GRACE_CAP_SECONDS = 300


def timeframe_seconds(timeframe: str) -> int:
    try:
        return TIMEFRAME_SECONDS[timeframe]
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAME_SECONDS)}") from None


def grace_for(timeframe: str, base_seconds: int = 15) -> timedelta:
    progressive = min(timeframe_seconds(timeframe) * GRACE_SHARE, GRACE_CAP_SECONDS)
    return timedelta(seconds=max(base_seconds, progressive))


def period_start(moment: datetime, timeframe: str) -> datetime:
    seconds = timeframe_seconds(timeframe)
    return datetime.fromtimestamp(int(moment.timestamp()) // seconds * seconds, UTC)


def next_period_start(moment: datetime, timeframe: str) -> datetime:
    return period_start(moment, timeframe) + timedelta(seconds=timeframe_seconds(timeframe))


@dataclass(frozen=True)
class PeriodOutcome:
    start: datetime
    end: datetime
    outcome: str  # hit | late | miss
    alert_id: int | None


def evaluate_periods(
    first_start: datetime,
    now: datetime,
    timeframe: str,
    grace: timedelta,
    alerts: list[tuple[int, datetime]],
    already_used: AbstractSet[int] = frozenset(),
    limit: int = 1000,
) -> list[PeriodOutcome]:
    """Judge every period from `first_start` whose end + grace has passed by `now`.

    `alerts` are (id, received_at) of the accepted alerts from `first_start` on, in any order;
    `already_used` are alerts a previous evaluation already matched to a period.
    """
    length = timedelta(seconds=timeframe_seconds(timeframe))
    pending = sorted((received, alert_id) for alert_id, received in alerts if alert_id not in already_used)
    used: set[int] = set()
    outcomes: list[PeriodOutcome] = []
    start = first_start
    while start + length + grace <= now and len(outcomes) < limit:
        end = start + length
        match = next(
            (
                (received, alert_id)
                for received, alert_id in pending
                if alert_id not in used and start <= received < end + grace
            ),
            None,
        )
        if match is None:
            outcomes.append(PeriodOutcome(start, end, "miss", None))
        else:
            received, alert_id = match
            used.add(alert_id)
            outcomes.append(PeriodOutcome(start, end, "hit" if received < end else "late", alert_id))
        start = end
    return outcomes


def misses_in_a_row(previous: int, outcomes: list[PeriodOutcome]) -> int:
    count = previous
    for outcome in outcomes:
        count = count + 1 if outcome.outcome == "miss" else 0
    return count
