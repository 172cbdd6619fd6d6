"""Percentiles of measured samples (latencies): the one formula every report and bench uses.

Nearest rank: the q-quantile of n values is the smallest value v such that at least q * n of the
values are <= v, i.e. ``sorted(values)[ceil(q * n) - 1]`` (the smallest value for q = 0). The result is
always one of the samples, never interpolated, so "p99 < 150 ms" means at least 99 % of the samples
took less than 150 ms. It is numpy's ``quantile(values, q, method="inverted_cdf")``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float | None:
    """The nearest-rank q-quantile (0 <= q <= 1) of `values`; None when there are none."""
    if not 0 <= q <= 1:
        raise ValueError(f"quantile {q!r} is not between 0 and 1")
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


def summary(values: Iterable[float], ndigits: int) -> dict[str, float | None]:
    """{"p50", "p99", "max"} of `values` rounded to `ndigits` (each None when there are no values)."""
    ordered = sorted(values)
    return {
        name: None if value is None else round(value, ndigits)
        for name, value in (
            ("p50", percentile(ordered, 0.5)),
            ("p99", percentile(ordered, 0.99)),
            ("max", ordered[-1] if ordered else None),
        )
    }
