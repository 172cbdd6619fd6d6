"""Statistics: realised and unrealised P&L per broker, symbol and source from our own fill ledger,
round-trip statistics, the cumulative realised P&L chart, date-range and broker filters, CSV export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from flask import Blueprint, Response, render_template, request
from flask_login import current_user, login_required

from core.infra.db import new_session
from core.pnl.loading import broker_titles, fetch_marks, load_ledger
from core.pnl.report import Range, Report, build_report, plain, trips_csv

bp = Blueprint("statistics", __name__, url_prefix="/statistics")
RECENT_TRIPS = 100


class FilterError(ValueError):
    """A filter the page cannot apply; the message says which and why."""


@dataclass(frozen=True)
class Filters:
    start: date | None = None
    end: date | None = None  # inclusive: the whole day counts
    broker_id: int | None = None

    @property
    def window(self) -> Range:
        def midnight(day: date) -> datetime:
            return datetime.combine(day, time(), tzinfo=UTC)

        return Range(
            midnight(self.start) if self.start else None, midnight(self.end + timedelta(days=1)) if self.end else None
        )

    def query(self) -> dict[str, str]:
        values = {"start": self.start, "end": self.end, "broker": self.broker_id}
        return {key: str(value) for key, value in values.items() if value is not None}


def _day(args, name: str, title: str) -> date | None:
    text = (args.get(name) or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FilterError(f"{title} must be a date like 2025-01-31, not {text[:20]!r}") from None


def parse_filters(args, broker_ids) -> Filters:
    start, end = _day(args, "start", "From"), _day(args, "end", "To")
    if start and end and end < start:
        raise FilterError("the range ends before it starts")
    broker = (args.get("broker") or "").strip()
    broker_id = None
    if broker:
        if not broker.isdigit() or int(broker) not in broker_ids:
            raise FilterError("unknown broker: pick one of your connections")
        broker_id = int(broker)
    return Filters(start, end, broker_id)


def _report(session, filters: Filters, titles: dict[int, str], *, with_marks: bool) -> Report:
    window = filters.window
    fills = load_ledger(session, current_user.id, broker_id=filters.broker_id, until=window.end)
    report = build_report(fills, window, broker_titles=titles)
    if with_marks and report.positions:
        marks = fetch_marks(session, current_user.id, {(p.broker_id, p.symbol) for p in report.positions})
        report = build_report(fills, window, marks, titles)
    return report


@bp.route("/")
@login_required
def index():
    with new_session() as session:
        titles = broker_titles(session, current_user.id)
        try:
            filters = parse_filters(request.args, titles)
        except FilterError as err:
            return render_template(
                "statistics/index.html",
                error=str(err),
                filters=Filters(),
                args=request.args,
                brokers=titles,
                report=None,
            ), 400
        report = _report(session, filters, titles, with_marks=True)
    chart = {
        quote: [{"time": second, "value": str(value)} for second, value in points]
        for quote, points in report.chart.items()
    }
    return render_template(
        "statistics/index.html",
        error=None,
        filters=filters,
        args=filters.query(),
        brokers=titles,
        report=report,
        chart=chart,
        recent=report.trips[::-1][:RECENT_TRIPS],
    )


@bp.route("/round-trips.csv")
@login_required
def export():
    with new_session() as session:
        titles = broker_titles(session, current_user.id)
        try:
            filters = parse_filters(request.args, titles)
        except FilterError as err:
            return Response(f"{err}\n", status=400, mimetype="text/plain")
        report = _report(session, filters, titles, with_marks=False)
    name = "-".join(["round-trips", *filters.query().values()]) + ".csv"
    return Response(
        trips_csv(report.trips, titles),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.app_template_filter("stat_amount")
def stat_amount(value: Decimal | None) -> str:
    """Money in a quote asset: cents for sizeable amounts, up to 8 places for small ones (BTC-quoted)."""
    if value is None:
        return "—"
    if abs(value) >= 1 or value == 0:
        return f"{value:,.2f}"
    return plain(value, Decimal("1e-8")) or "0"


@bp.app_template_filter("stat_qty")
def stat_qty(value: Decimal | None) -> str:
    return plain(value, Decimal("1e-8")) if value is not None else "—"


@bp.app_template_filter("stat_pct")
def stat_pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@bp.app_template_filter("stat_time")
def stat_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
