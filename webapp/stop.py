"""Stop everything, from every page's header: pause all of the trader's automation, or flatten."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from core import flatten, tasks
from core.halt import trading_halted
from core.infra.db import new_session, session_scope
from core.stop import pause_all

bp = Blueprint("stop", __name__, url_prefix="/stop")


@bp.post("/pause-all")
@login_required
def pause():
    with session_scope() as session:
        report = pause_all(session, current_user.id)
    flash(
        f'Paused everything: {report}. Webhook alerts are stored and refused with "paused" until you '
        f"resume each webhook.",
        "success",
    )
    return redirect(url_for("stop.confirm_flatten" if request.form.get("then") == "flatten" else "home.index"))


def _chosen() -> list[int] | None:
    values = request.values.getlist("broker")
    ids = [int(v) for v in values if v.isdigit()]
    return ids if values else None


@bp.get("/flatten")
@login_required
def confirm_flatten():
    """The confirmation: per broker, what will be cancelled and sold."""
    with new_session() as session:
        plans = flatten.plan(session, current_user.id, _chosen())
        halted = trading_halted(session)
    return render_template("stop/flatten.html", plans=plans, report=None, halted=halted)


@bp.post("/flatten")
@login_required
def do_flatten():
    """Hand the flatten to an `orders` worker (venues are never called from a page request)."""
    chosen = _chosen()
    if not chosen:
        flash("Choose at least one broker to flatten.", "error")
        return redirect(url_for("stop.confirm_flatten"))
    try:
        flatten.store_report(current_user.id, None)
        tasks.send_flatten(current_user.id, chosen)
    except Exception:  # noqa: BLE001 - redis/kombu transport errors: nothing was started
        flash("Flatten could not be started (the task queue is unreachable); nothing was done. Try again.", "error")
        return redirect(url_for("stop.confirm_flatten"))
    return redirect(url_for("stop.report"))


@bp.get("/flatten/report")
@login_required
def report():
    return render_template("stop/flatten.html", plans=None, report=flatten.load_report(current_user.id))


@bp.get("/flatten/report/status")
@login_required
def report_status():
    return render_template("stop/_report.html", report=flatten.load_report(current_user.id))
