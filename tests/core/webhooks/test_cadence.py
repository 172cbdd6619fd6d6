"""MISS detection arithmetic: periods aligned on the timeframe, hit / late / miss, progressive grace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.webhooks.cadence import (
    evaluate_periods,
    grace_for,
    misses_in_a_row,
    next_period_start,
    period_start,
)

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
GRACE = timedelta(seconds=15)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_periods_align_on_the_timeframe():
    assert period_start(at(299), "5m") == T0 and period_start(at(300), "5m") == at(300)
    assert next_period_start(at(1), "1h") == at(3600)
    assert period_start(datetime(2026, 11, 21, 3, 7, tzinfo=UTC), "4h") == datetime(2026, 11, 21, tzinfo=UTC)


def test_grace_is_progressive_with_the_timeframe():
    assert grace_for("1m") == timedelta(seconds=15) and grace_for("5m") == timedelta(seconds=15)
    assert grace_for("1h") == timedelta(seconds=180) and grace_for("1d") == timedelta(seconds=300)
    assert grace_for("1m", 30) == timedelta(seconds=30)


def test_hit_late_and_miss():
    alerts = [(1, at(2)), (2, at(60 + 60 + 10)), (3, at(200))]
    outcomes = evaluate_periods(T0, at(4 * 60 + 15), "1m", GRACE, alerts)
    # 10:00 hit by #1; 10:01 nothing inside, #2 arrives 10 s after its end: late; 10:02 missed
    # (#2 already counted); 10:03 hit by #3.
    assert [(o.outcome, o.alert_id) for o in outcomes] == [("hit", 1), ("late", 2), ("miss", None), ("hit", 3)]


def test_a_period_is_judged_only_once_its_grace_has_passed():
    assert evaluate_periods(T0, at(60 + 14), "1m", GRACE, []) == []
    [outcome] = evaluate_periods(T0, at(60 + 15), "1m", GRACE, [])
    assert outcome.outcome == "miss" and (outcome.start, outcome.end) == (T0, at(60))


def test_alerts_used_by_an_earlier_evaluation_do_not_count_twice():
    outcomes = evaluate_periods(at(60), at(135), "1m", GRACE, [(7, at(65))], already_used={7})
    assert [o.outcome for o in outcomes] == ["miss"]


def test_three_misses_in_a_row_and_a_hit_resets():
    outcomes = evaluate_periods(T0, at(5 * 60 + 15), "1m", GRACE, [(1, at(140))])
    assert [o.outcome for o in outcomes] == ["miss", "miss", "hit", "miss", "miss"]
    assert misses_in_a_row(0, outcomes) == 2
    assert misses_in_a_row(1, outcomes[:2]) == 3


def test_unknown_timeframe_is_refused():
    with pytest.raises(ValueError, match="unknown timeframe"):
        grace_for("7m")


@given(
    offsets=st.lists(st.floats(min_value=0, max_value=20 * 60, allow_nan=False), max_size=40),
    periods=st.integers(min_value=1, max_value=20),
)
def test_every_alert_counts_for_at_most_one_period_and_every_period_has_one_outcome(offsets, periods):
    alerts = [(i, at(offset)) for i, offset in enumerate(offsets)]
    outcomes = evaluate_periods(T0, at(periods * 60 + 15), "1m", GRACE, alerts)
    assert len(outcomes) == periods
    used = [o.alert_id for o in outcomes if o.alert_id is not None]
    assert len(used) == len(set(used))
    for o in outcomes:
        if o.outcome == "hit":
            assert o.start <= dict(alerts)[o.alert_id] < o.end
        elif o.outcome == "late":
            assert o.end <= dict(alerts)[o.alert_id] < o.end + GRACE
        else:  # a miss: no unused alert was available inside the period
            assert not any(o.start <= moment < o.end and i not in used for i, moment in alerts)
