"""The backtest metrics of a live daily curve: the very functions of core/backtest/metrics.py on
`capital + P&L`, checked against numbers worked by hand; never a NaN, a reason instead."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from core.ledger.daily import DailyCurve, DayPoint
from core.ledger.entries import MANUAL, LedgerFill
from core.ledger.fifo import RoundTrip
from core.ledger.live_metrics import LIVE_METRICS, live_metrics, metrics_of
from core.ledger.report import Range

D = Decimal
DAY1 = date(2025, 3, 1)


def curve(*pnls: str, capital: str = "100") -> DailyCurve:
    points = [DayPoint(DAY1 + timedelta(days=n), D(p), D(0)) for n, p in enumerate(pnls)]
    return DailyCurve("USDT", points, D(capital), days_in_market=len(points))


def trip(pnl: str, quote: str = "USDT") -> RoundTrip:
    at = datetime(2025, 3, 1, tzinfo=UTC)
    return RoundTrip(1, "BTCUSDT", quote, MANUAL, "long", D(1), at, at, D(100), D(100) + D(pnl), D(0), D(pnl))


def test_the_ten_metrics_of_a_three_day_curve_worked_by_hand():
    # Equity 110, 99, 121 on 100: daily returns 10 %, −10 %, 22.2 %.
    found = live_metrics(curve("10", "-1", "21"), [trip("12"), trip("-3"), trip("12")])
    assert found.missing is None and list(found.values) == list(LIVE_METRICS)
    returns = [0.1, 99 / 110 - 1, 121 / 99 - 1]
    mean = sum(returns) / 3
    sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)
    assert math.isclose(found.values["total_return_pct"], 21.0)
    assert math.isclose(found.values["sharpe"], mean / sd * math.sqrt(365))
    assert math.isclose(found.values["sortino"], mean / math.sqrt((99 / 110 - 1) ** 2 / 3) * math.sqrt(365))
    assert math.isclose(found.values["max_drawdown_pct"], (99 / 110 - 1) * 100)
    assert found.values["max_drawdown_duration_days"] == 1
    assert math.isclose(found.values["win_rate_pct"], 200 / 3)
    assert math.isclose(found.values["profit_factor"], 8.0)
    assert math.isclose(found.values["expectancy"], 7.0)
    assert found.values["cagr_pct"] is None and found.notes["cagr_pct"] == "n/a (< 30 days)"
    assert found.values["calmar"] is None and found.notes["calmar"].startswith("no CAGR")


def test_only_the_curves_quote_asset_counts_its_trips():
    found = live_metrics(curve("5", "5"), [trip("5"), trip("-100", quote="BTC")])
    assert found.values["win_rate_pct"] == 100.0 and found.values["profit_factor"] is None
    assert found.notes["profit_factor"] == "infinite (no losing trade)"


def test_a_curve_without_days_capital_or_equity_left_gives_a_reason_never_a_nan():
    assert live_metrics(DailyCurve("USDT"), []).missing == "no day in this range"
    assert "no position was ever open" in (live_metrics(curve("0", capital="0"), []).missing or "")
    assert "losses reached the capital" in (live_metrics(curve("-50", "-100"), []).missing or "")
    flat = live_metrics(curve("0", "0", "0"), [])
    assert flat.values["sharpe"] is None and flat.notes["sharpe"] == "zero variance of daily returns"
    assert all(value is None or math.isfinite(value) for value in flat.values.values())


def test_the_metrics_of_fills_alone_over_a_window_count_their_own_trips():
    def fill(n: int, side: str, price: str, day: int) -> LedgerFill:
        at = datetime(2025, 3, day, 12, tzinfo=UTC)
        return LedgerFill(n, 1, "BTCUSDT", "BTC", "USDT", side, D(1), D(price), at, D(0), "USDT", 100 + n, MANUAL)

    fills = [fill(1, "buy", "100", 1), fill(2, "sell", "110", 2), fill(3, "buy", "100", 3), fill(4, "sell", "95", 4)]
    window = Range(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 3, tzinfo=UTC))  # the first trip only
    (quote, found), *others = metrics_of(fills, window, date(2025, 3, 10), lambda _key, _day: None, {}).items()
    assert quote == "USDT" and others == []
    assert math.isclose(found.values["total_return_pct"], 10.0) and found.values["win_rate_pct"] == 100.0
