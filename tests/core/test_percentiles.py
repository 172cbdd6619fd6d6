"""The one percentile formula (nearest rank): properties over random samples and numpy as the reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.percentiles import percentile, summary

samples = st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=1, max_size=300)
shares = st.floats(min_value=0, max_value=1)


@given(samples, shares, shares)
def test_percentile_is_monotone_in_q(values, q1, q2):
    low, high = sorted((q1, q2))
    assert percentile(values, low) <= percentile(values, high)


@given(samples, shares)
def test_percentile_is_one_of_the_samples_within_min_and_max(values, q):
    result = percentile(values, q)
    assert min(values) <= result <= max(values) and result in values


@given(st.lists(st.integers(min_value=-1000, max_value=1000), min_size=1, max_size=40), shares)
def test_percentile_matches_numpy_inverted_cdf_on_small_lists(values, q):
    assert percentile(values, q) == np.quantile(values, q, method="inverted_cdf")


@given(samples, shares)
def test_at_least_a_share_q_of_the_samples_are_at_or_below_it(values, q):
    result = percentile(values, q)
    assert sum(v <= result for v in values) >= q * len(values)
    assert sum(v < result for v in values) < max(q * len(values), 1)  # and it is the smallest such sample


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        (list(range(1, 101)), 0.99, 99),
        (list(range(1, 101)), 0.5, 50),
        (list(range(1, 101)), 1.0, 100),
        ([5.0], 0.99, 5.0),
        ([3, 1, 2], 0.0, 1),
        ([4, 1, 3, 2], 0.5, 2),
    ],
)
def test_worked_examples(values, q, expected):
    assert percentile(values, q) == expected


def test_no_values_no_percentile_and_a_share_outside_0_1_is_refused():
    assert percentile([], 0.5) is None
    assert summary([], 2) == {"p50": None, "p99": None, "max": None}
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1.0], 99)


def test_summary_rounds_p50_p99_and_max():
    assert summary([x / 3 for x in range(1, 101)], 2) == {"p50": 16.67, "p99": 33.0, "max": 33.33}
