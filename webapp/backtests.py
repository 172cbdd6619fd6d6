"""Backtests: the form, past runs, live progress, results (charts, metrics, trades), compare, grids."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from htmx_flask import make_response, request
from wtforms import DateField, DecimalField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from core.backtest import metric_labels, run_lifecycle, run_params, run_results
from core.infra.bus import task_sender
from core.infra.db import new_session, session_scope
from core.models import BacktestRun
from webapp import backtest_charts
from webapp.extensions import expensive
from webapp.numbers import money
from webapp.scoping import owned_or_404

log = logging.getLogger(__name__)
bp = Blueprint("backtests", __name__, url_prefix="/backtests")
TRADES_PER_PAGE = 100
MIN_COMPARED = 2
DAY_MS = 86_400_000


class BacktestForm(FlaskForm):
    strategy_version = SelectField("Strategy", coerce=int, validators=[InputRequired()])
    dataset = SelectField("Market", validators=[InputRequired()])
    start = DateField("From (UTC)", validators=[Optional()])
    end = DateField("To (UTC, inclusive)", validators=[Optional()])
    fee = DecimalField(
        "Fee per fill (fraction: 0.001 = 0.1%)", default=Decimal("0.001"), places=None, validators=[InputRequired()]
    )
    slippage_bps = DecimalField("Slippage (bps)", default=Decimal("0"), places=None, validators=[InputRequired()])
    cash = DecimalField(
        "Starting cash", default=Decimal("10000"), places=None, validators=[InputRequired(), NumberRange(min=0)]
    )
    params = StringField(
        "Parameters (NAME=VALUE, comma separated; empty: the strategy's)", validators=[Length(max=2000)]
    )
    grid = TextAreaField(
        "Parameter grid (optional, one per line: fast = 5..20:5 or slow = 20, 40, 60)", validators=[Length(max=2000)]
    )
    grid_metric = SelectField(
        "Rank the grid by", choices=[(metric, metric_labels.label(metric)) for metric in run_params.GRID_METRICS]
    )


def _day_ms(day: date | None, end_of_day: bool = False) -> int | None:
    if day is None:
        return None
    midnight = int(datetime.combine(day, time.min, tzinfo=UTC).timestamp() * 1000)
    return midnight + DAY_MS - 1 if end_of_day else midnight  # "to 2024-01-31" includes that whole day


def _fill_choices(form: BacktestForm, session) -> list[run_params.Dataset]:
    versions = run_params.strategy_versions(session, current_user.id)
    form.strategy_version.choices = [(v.id, f"{v.strategy.name} · v{v.number}") for v in versions]
    datasets = run_params.available_datasets(session)
    form.dataset.choices = [(d.key, d.label) for d in datasets]
    return datasets


def _request_from(form: BacktestForm) -> run_params.RunRequest:
    venue, _, rest = (form.dataset.data or "").partition("|")
    symbol, _, timeframe = rest.partition("|")
    grid = run_params.parse_grid(form.grid.data or "")
    return run_params.RunRequest(
        strategy_version_id=form.strategy_version.data,
        venue=venue,
        symbol=symbol,
        timeframe=timeframe,
        start_ms=_day_ms(form.start.data),
        end_ms=_day_ms(form.end.data, end_of_day=True),
        fee=form.fee.data,
        slippage_bps=form.slippage_bps.data,
        cash=form.cash.data,
        params=run_params.parse_params(form.params.data or ""),
        grid=grid or None,
        grid_metric=form.grid_metric.data if grid else None,
    )


def _prefill(form: BacktestForm, run: BacktestRun) -> None:
    """A past run's settings in the form: "run again" / "tweak"."""
    form.strategy_version.data = run.strategy_version_id
    form.dataset.data = f"{run.venue}|{run.symbol}|{run.timeframe}"
    form.start.data = datetime.fromtimestamp(run.start_ms / 1000, UTC).date() if run.start_ms is not None else None
    form.end.data = datetime.fromtimestamp(run.end_ms / 1000, UTC).date() if run.end_ms is not None else None
    form.fee.data, form.slippage_bps.data, form.cash.data = (
        Decimal(bt_dec(v)) for v in (run.fee, run.slippage_bps, run.cash)
    )
    form.params.data = ", ".join(f"{k}={v}" for k, v in (run.params or {}).items())
    if run.grid:
        form.grid.data = "\n".join(f"{k} = {', '.join(map(str, v))}" for k, v in run.grid.items())
        form.grid_metric.data = run.grid_metric


@bp.app_template_filter("bt_date")
def bt_date(time_ms: int | None) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%d") if time_ms is not None else ""


bp.add_app_template_filter(run_results.ordered_metrics, "bt_ordered")
bp.add_app_template_filter(metric_labels.label, "bt_label")
bp.add_app_template_filter(metric_labels.definition, "bt_definition")


@bp.app_template_filter("bt_dec")
def bt_dec(value: Decimal) -> str:
    """0.00100000 -> "0.001", 10000.00000000 -> "10000" (never "1E+4")."""
    return format(value.normalize(), "f")


@bp.app_template_filter("bt_num")
def bt_num(value) -> str:
    """A metric: a count as a whole number, any other number in 2 decimals (webapp.numbers), n/a when missing."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)) or not math.isfinite(value):
        return str(value)
    return money(value) if isinstance(value, (float, Decimal)) else f"{value:,}"


@bp.get("/")
@login_required
def index():
    # HTMX refreshes only the table while runs are in progress.
    template = "backtests/_runs_table.html" if request.htmx else "backtests/index.html"
    with new_session() as session:
        return render_template(template, runs=run_results.list_runs(session, current_user.id))


@bp.route("/new", methods=["GET", "POST"])
@login_required
@expensive
def new():
    form = BacktestForm()
    with new_session() as session:
        datasets = _fill_choices(form, session)
        if request.method == "GET" and request.args.get("from", type=int):
            _prefill(form, owned_or_404(session, BacktestRun, request.args.get("from", type=int)))
        elif request.method == "GET" and form.strategy_version.choices:
            form.strategy_version.data = form.strategy_version.choices[0][0]
    if form.validate_on_submit():
        try:
            with session_scope() as session:
                run_id = run_lifecycle.create_run(session, current_user.id, _request_from(form)).id
        except run_params.RunInputError as exc:
            form.form_errors.append(str(exc))
        else:
            if run_lifecycle.enqueue_run(task_sender(), run_id) is None:
                flash("The task queue is unreachable: the run was not started. Try again in a moment.", "error")
            return redirect(url_for("backtests.show", run_id=run_id))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "backtests/new.html", form=form, datasets=datasets, max_grid=run_params.MAX_GRID_COMBINATIONS
    ), status


@bp.get("/<int:run_id>")
@login_required
def show(run_id: int):
    with new_session() as session:
        run = owned_or_404(session, BacktestRun, run_id)
        version = run.strategy_version
        heatmap = (
            backtest_charts.grid_heatmap(run, _chosen_metric(run))
            if run.kind == "grid" and run.status == "done"
            else None
        )
        return render_template(
            "backtests/run.html",
            run=run,
            version=version,
            strategy=version.strategy,
            heatmap=heatmap,
            trades=_trades_page(run.trades or []),
            metrics_order=run_params.GRID_METRICS,
        )


@dataclass(frozen=True)
class TradesPage:
    rows: list[dict]
    number: int
    pages: int
    first: int  # the 1-based index of the first row shown

    def __bool__(self) -> bool:
        return bool(self.rows)


def _trades_page(trades: list[dict]) -> TradesPage:
    """One page of the run's trades; a page number out of range or malformed shows the nearest page."""
    pages = max(1, -(-len(trades) // TRADES_PER_PAGE))
    asked = request.args.get("trades_page", "1")
    number = min(max(int(asked), 1), pages) if asked.isdigit() else 1
    start = (number - 1) * TRADES_PER_PAGE
    return TradesPage(trades[start : start + TRADES_PER_PAGE], number, pages, start + 1)


def _chosen_metric(run: BacktestRun) -> str:
    metric = request.args.get("metric")
    return metric if metric in run_params.GRID_METRICS else (run.grid_metric or "total_return_pct")


@bp.get("/<int:run_id>/progress")
@login_required
def progress(run_id: int):
    with new_session() as session:
        run = owned_or_404(session, BacktestRun, run_id)
        html = render_template("backtests/_progress.html", run=run)
    return make_response(html, refresh=run.finished)  # a finished run: the page itself becomes the results page


@bp.get("/<int:run_id>/chart.json")
@login_required
def chart(run_id: int):
    with new_session() as session:
        run = owned_or_404(session, BacktestRun, run_id)
        data = _series_only(run) if request.args.get("series_only") else backtest_charts.chart_data(session, run)
    return jsonify(data)


def _series_only(run: BacktestRun) -> dict:
    series = run.series or {"time_ms": [], "equity": []}
    cash = float(run.cash)
    return {
        "id": run.id,
        "equity": [
            {"time": int(t) // 1000, "value": (v / cash - 1.0) * 100.0}
            for t, v in zip(series["time_ms"], series["equity"], strict=True)
        ],
    }


@bp.get("/<int:run_id>/trades.csv")
@login_required
def trades_csv(run_id: int):
    with new_session() as session:
        run = owned_or_404(session, BacktestRun, run_id)
        body = run_results.trades_csv(run)
    filename = f"backtest-{run.id}-{run.symbol}-{run.timeframe}-trades.csv"
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.post("/<int:run_id>/delete")
@login_required
def delete(run_id: int):
    with session_scope() as session:
        run = owned_or_404(session, BacktestRun, run_id)
        if not run.finished:
            flash("A run still in progress cannot be deleted.", "error")
            return redirect(url_for("backtests.show", run_id=run_id))
        session.delete(run)
    flash(f"Backtest #{run_id} deleted.", "success")
    return redirect(url_for("backtests.index"))


@bp.get("/compare")
@login_required
def compare():
    ids = request.args.getlist("run", type=int)
    if len(set(ids)) < MIN_COMPARED:
        flash("Tick at least two runs to compare.", "error")
        return redirect(url_for("backtests.index"))
    with new_session() as session:
        try:
            chosen = run_results.owned_runs(session, current_user.id, ids)
        except LookupError:
            abort(404)
        return render_template("backtests/compare.html", runs=chosen, rows=run_results.compare_metric_rows(chosen))
