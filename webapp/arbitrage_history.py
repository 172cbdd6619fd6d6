"""The arbitrage engine's trade history: every intent with both legs, the spread it captured, its fees and net,
filtered (pair, kind, state, UTC date range) and paged 50 at a time, and the CSV of the filtered set. Admins only,
like the Arbitrage page; a bad filter value is a 400 that says which."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, render_template, request, stream_with_context

from core.arb_history import KINDS, PAGE_SIZE, STATES, FilterError, HistoryFilter, all_rows, csv_chunks, page_of
from core.arb_history import parse_page as parse_page_number
from core.infra.db import new_session
from webapp.scoping import admin_required

bp = Blueprint("arbitrage_history", __name__, url_prefix="/arbitrage/history")


@bp.get("/")
@admin_required
def index():
    try:
        history = HistoryFilter.parse(request.args)
        page = parse_page_number(request.args.get("page"))
    except FilterError as exc:
        return render_template("arbitrage/history.html", error=str(exc), **_choices(HistoryFilter())), 400
    with new_session() as session:
        rows, total = page_of(session, history, page)
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template(
        "arbitrage/history.html",
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        error=None,
        **_choices(history),
    )


@bp.get("/export.csv")
@admin_required
def export():
    try:
        history = HistoryFilter.parse(request.args)
    except FilterError as exc:
        return Response(f"{exc}\n", status=400, mimetype="text/plain")

    def generate():
        with new_session() as session:
            yield from csv_chunks(all_rows(session, history))

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="arbitrage-history-{stamp}.csv"'},
    )


def _choices(history: HistoryFilter) -> dict:
    return {"history": history, "args": history.query_args(), "kinds": KINDS, "states": STATES}
