"""Statistics: realised and unrealised P&L per broker, symbol and source from our own fill ledger,
round-trip statistics, the cumulative realised P&L chart, the filters kept in the URL
(webapp/statistics_filters.py), CSV exports of the round trips and of the fills."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import Blueprint, Response, render_template, request
from flask_login import current_user, login_required
from sqlalchemy.orm import Session

from core.infra.db import new_session
from core.ledger.cache import ledger_view
from core.ledger.entries import LedgerFill
from core.ledger.loading import fetch_marks, load_ledger
from core.ledger.report import Report, fills_csv, report_of_books, trips_csv
from webapp.statistics_filters import (
    PERIODS,
    SIDES,
    SOURCES,
    Choices,
    FilterError,
    Filters,
    load_choices,
    parse_filters,
)

bp = Blueprint("statistics", __name__, url_prefix="/statistics")
RECENT_TRIPS = 100


def _fills(session, filters: Filters) -> list[LedgerFill]:
    """The fills of the books in view, up to the window's end (matching needs each book whole)."""
    fills = load_ledger(
        session, current_user.id, broker_ids=filters.broker_ids, symbol=filters.symbol, until=filters.window.end
    )
    return [fill for fill in fills if filters.keeps(fill)]


def _report(session, filters: Filters, choices: Choices, *, with_marks: bool) -> Report:
    """From the trader's kept ledger (core/ledger/cache.py): only this view's books, not matched again."""
    window, titles = filters.window, choices.brokers
    fills, books = ledger_view(session, current_user.id, window.end).select(filters.keeps, window)
    held = {(book.broker_id, book.symbol) for book in books.values() if book.lots}
    marks = fetch_marks(session, current_user.id, held) if with_marks and held else {}
    return report_of_books(fills, books, window, marks, titles, filters.side)


def _page(choices: Choices, filters: Filters, **context):
    return render_template(
        "statistics/index.html",
        filters=filters,
        args=filters.args,
        choices=choices,
        brokers=choices.brokers,
        venues={venue: venue for venue in sorted(set(choices.venues.values()))},
        symbols={symbol: symbol for symbol in choices.symbols},
        periods=PERIODS,
        sources=SOURCES,
        sides=SIDES,
        **context,
    )


@bp.route("/")
@login_required
def index():
    with new_session() as session:
        choices = load_choices(session, current_user.id)
        try:
            filters = parse_filters(request.args, choices)
        except FilterError as err:
            return _page(choices, Filters(), error=str(err), report=None), 400
        report = _report(session, filters, choices, with_marks=True)
    chart = {
        quote: [{"time": second, "value": str(value)} for second, value in points]
        for quote, points in report.chart.items()
    }
    return _page(choices, filters, error=None, report=report, chart=chart, recent=report.trips[::-1][:RECENT_TRIPS])


def _export(kind: str, rows: Callable[[Session, Filters, Choices], str]) -> Response:
    with new_session() as session:
        choices = load_choices(session, current_user.id)
        try:
            filters = parse_filters(request.args, choices)
        except FilterError as err:
            return Response(f"{err}\n", status=400, mimetype="text/plain")
        text = rows(session, filters, choices)
    name = "-".join([kind, *filters.args.values()]) + ".csv"
    return Response(text, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.route("/round-trips.csv")
@login_required
def export():
    return _export(
        "round-trips",
        lambda session, filters, choices: trips_csv(
            _report(session, filters, choices, with_marks=False).trips, choices.brokers
        ),
    )


@bp.route("/fills.csv")
@login_required
def export_fills():
    """The fills of the filtered view inside its period (and of its side), for a tax tool."""

    def rows(session: Session, filters: Filters, choices: Choices) -> str:
        window = filters.window
        fills = [f for f in _fills(session, filters) if f.traded_at in window and filters.side in (None, f.side)]
        return fills_csv(fills, choices.venues, choices.brokers)

    return _export("fills", rows)


@bp.app_template_filter("stat_time")
def stat_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
