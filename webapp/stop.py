"""Stop everything, from every page's header: pause all of the trader's automation, or flatten."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from core import flatten
from core.db import new_session, session_scope
from core.orders import dispatch
from core.stop import pause_all

bp = Blueprint("stop", __name__, url_prefix="/stop")


@bp.post("/pause-all")
@login_required
def pause():
    with session_scope() as session:
        report = pause_all(session, current_user.id)
    flash(f"Paused everything: {report}. Webhook alerts are stored and refused with \"paused\" until you "
          f"resume each webhook.", "success")
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
    return render_template("stop/flatten.html", plans=plans, results=None)


@bp.post("/flatten")
@login_required
def do_flatten():
    chosen = _chosen()
    if not chosen:
        flash("Choose at least one broker to flatten.", "error")
        return redirect(url_for("stop.confirm_flatten"))
    # Cancels are settled here (the venue's answer decides); closes go to the `orders` queue.
    results = flatten.flatten(current_user.id, chosen, place=dispatch.place)
    status = 502 if any(r.failed for r in results) else 200
    return render_template("stop/flatten.html", plans=None, results=results), status
