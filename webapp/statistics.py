"""Statistics: realised and unrealised P&L per broker, symbol and source from our own fill ledger,
round-trip statistics, the filters kept in the URL (webapp/statistics_filters.py), CSV exports of the round
trips and of the fills; the live daily curve's charts and metric tables (webapp/statistics_charts.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, render_template, request
from flask_login import current_user, login_required
from sqlalchemy.orm import Session

from core.infra.db import new_session
from core.ledger.cache import LedgerView, ledger_view
from core.ledger.entries import LedgerFill
from core.ledger.live_metrics import LIVE_METRICS
from core.ledger.loading import fetch_marks
from core.ledger.report import Report, fills_csv, report_of_books, trips_csv
from webapp import statistics_charts as live
from webapp.statistics_arbitrage import arbitrage_summaries
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


def _ledger(session, filters: Filters) -> LedgerView:
    """The trader's kept ledger up to the window's end (core/ledger/cache.py): matched once, not per view."""
    return ledger_view(session, current_user.id, filters.window.end)


def _fills(session, filters: Filters) -> list[LedgerFill]:
    """The fills of the books in view, up to the window's end (matching needs each book whole)."""
    return _ledger(session, filters).fills_of(filters.keeps)


def _report(
    session, filters: Filters, choices: Choices, *, with_marks: bool, ledger: LedgerView | None = None
) -> Report:
    """Only this view's books of the kept ledger, not matched again."""
    window, titles = filters.window, choices.brokers
    fills, books = (ledger or _ledger(session, filters)).select(filters.keeps, window)
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
        ledger = _ledger(session, filters)
        firsts = ledger.first_fills_of(filters.keeps)  # all load_marks reads: the pairs and the first day
        report = _report(session, filters, choices, with_marks=True, ledger=ledger)
        etag = live.charts_etag(session, current_user.id, filters.args, datetime.now(UTC).date())
        books = ledger.books_of(filters.keeps)
        view = live.days_of_books(books, filters, live.load_marks(session, firsts, filters.window, choices.venues))
        chart = live.chart_data(view.curves())
        strategies = live.strategy_rows(view, report.trips, choices)
        bots = live.bot_rows(session, current_user.id, view, report.trips, choices)
    return _page(
        choices,
        filters,
        error=None,
        report=report,
        chart=chart,
        chart_etag=etag,
        strategy_rows=strategies,
        bot_rows=bots,
        metric_keys=LIVE_METRICS,
        recent=report.trips[::-1][:RECENT_TRIPS],
        arbitrage=arbitrage_summaries(),
    )


@bp.route("/charts.json")
@login_required
def charts():
    """The filtered view's daily curve per quote asset (the page's charts poll it: live as fills arrive);
    304 while nothing it depends on changed (webapp/statistics_charts.py charts_etag)."""
    with new_session() as session:
        choices = load_choices(session, current_user.id)
        try:
            filters = parse_filters(request.args, choices)
        except FilterError as err:
            return jsonify(error=str(err)), 400
        etag = live.charts_etag(session, current_user.id, filters.args, datetime.now(UTC).date())
        if etag in request.if_none_match:
            return Response(status=304, headers={"ETag": f'"{etag}"'})
        ledger = _ledger(session, filters)
        firsts, books = ledger.first_fills_of(filters.keeps), ledger.books_of(filters.keeps)
        view = live.days_of_books(books, filters, live.load_marks(session, firsts, filters.window, choices.venues))
    response = jsonify(live.chart_data(view.curves()))
    response.set_etag(etag)
    return response


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
