"""The backtest metrics of a live daily curve (core/ledger/daily.py): core/backtest/metrics.py's own
compute_metrics on the curve's equity, `capital + P&L` at each day's end, with the round trips as its trades.
The starting cash is the curve's capital (the most its positions cost at once, docs/METRICS.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import numpy as np

from core.backtest.metrics import TradeOutcome, compute_metrics
from core.ledger.daily import DailyCurve, DayClose, view_days
from core.ledger.entries import LedgerFill
from core.ledger.fifo import MarkKey, RoundTrip
from core.ledger.report import Range, build_report

# The ten metrics the Statistics page shows beside a backtest's, in its order.
LIVE_METRICS = (
    "total_return_pct",
    "cagr_pct",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown_pct",
    "max_drawdown_duration_days",
    "win_rate_pct",
    "profit_factor",
    "expectancy",
)


@dataclass(frozen=True)
class LiveMetrics:
    """The ten metrics (None with its reason in `notes`), or why none could be computed (`missing`)."""

    values: dict[str, float | int | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    missing: str | None = None


def live_metrics(curve: DailyCurve, trips: Iterable[RoundTrip]) -> LiveMetrics:
    if not curve.points:
        return LiveMetrics(missing="no day in this range")
    if curve.capital <= 0:
        return LiveMetrics(missing="no position was ever open: no capital to measure returns against")
    capital = float(curve.capital)
    times_ms = np.array([point.time * 1000 for point in curve.points], dtype=np.int64)
    equity = np.array([capital + float(point.pnl) for point in curve.points], dtype="float64")
    if equity.min() <= 0:
        return LiveMetrics(missing="the losses reached the capital at work: a return on it is undefined")
    trades = [_outcome(trip) for trip in trips if trip.quote == curve.quote]
    values, notes = compute_metrics(
        trades,
        times_ms,
        equity,
        first_open=1.0,  # buy and hold has no meaning across a live view's symbols: not shown
        last_close=1.0,
        start_cash=capital,
        candles_in_market=curve.days_in_market,
    )
    shown = {key: _finite(values.get(key)) for key in LIVE_METRICS}
    return LiveMetrics(shown, {key: notes[key] for key in LIVE_METRICS if key in notes})


def _outcome(trip: RoundTrip) -> TradeOutcome:
    entry = float(trip.entry_price * trip.quantity)
    return TradeOutcome(float(trip.pnl), float(trip.pnl) / entry * 100.0 if entry else 0.0, float(trip.fees))


def _finite(value: float | int | None) -> float | int | None:
    """A metric as the page shows it: never NaN or infinite (those read as missing)."""
    if value is None or isinstance(value, int):
        return value
    return value if np.isfinite(value) else None


def metrics_of(
    fills: Sequence[LedgerFill],
    window: Range,
    today: date,
    day_close: DayClose,
    latest: Mapping[MarkKey, Decimal | None],
) -> dict[str, LiveMetrics]:
    """Per quote asset, the metrics of these fills alone over `window`: their own daily curve and the round
    trips they close in it (a bot's live period, beside its backtest)."""
    trips = build_report(fills, window).trips
    curves = view_days(fills, window, today, day_close, latest).curves()
    return {quote: live_metrics(curve, trips) for quote, curve in sorted(curves.items())}
