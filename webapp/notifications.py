"""The notification centre (bell, list, mark read, live count over SSE) and the per-user channel settings."""

from __future__ import annotations

import json
import logging

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError

from core.infra.bus import notifications_channel
from core.infra.db import new_session
from core.models import Notification
from core.models.notifications import SEVERITIES
from core.notifications import center, channels
from webapp import sse
from webapp.scoping import owned_or_404

log = logging.getLogger(__name__)
bp = Blueprint("notifications", __name__, url_prefix="/notifications")


def _filters() -> center.Filters:
    severity, source = request.args.get("severity") or None, request.args.get("source") or None
    return center.Filters(
        severity=severity if severity in SEVERITIES else None,
        source=source if source in center.SOURCES else None,
        unread_only=request.args.get("unread") == "1",
    )


@bp.get("/")
@login_required
def index():
    filters = _filters()
    with new_session() as session:
        items = center.listing(session, current_user.id, filters)
        unread = center.unread_count(session, current_user.id)
    return render_template(
        "notifications/index.html",
        items=items,
        filters=filters,
        unread=unread,
        severities=SEVERITIES,
        sources=center.SOURCES,
    )


@bp.post("/read")
@login_required
def read():
    """Mark the posted ids read, or every one with all=1; back to the list with the same filters."""
    ids = None if request.form.get("all") == "1" else [int(v) for v in request.form.getlist("id") if v.isdigit()]
    center.mark_read(current_user.id, ids)
    return redirect(request.form.get("next") if _local(request.form.get("next")) else url_for(".index"))


def _local(target: str | None) -> bool:
    """A path on this site (never //host or /\\host, which browsers read as another site)."""
    return bool(target) and target.startswith("/") and not target.startswith("//") and "\\" not in target


@bp.get("/open/<int:notification_id>")
@login_required
def open_(notification_id: int):
    """Follow a notification's link, marking it read on the way."""
    with new_session() as session:
        item = owned_or_404(session, Notification, notification_id)
    center.mark_read(current_user.id, [item.id])
    return redirect(item.link if _local(item.link) else url_for(".index"))


@bp.get("/stream")
@login_required
def stream():
    """Server-sent events: an `unread` event (the bell's inner HTML) at connection and on every change."""
    with new_session() as session:
        unread = center.unread_count(session, current_user.id)
    return sse.relay(
        notifications_channel(current_user.id),
        sse.RETRY + _bell_event(unread),
        lambda data: _bell_event(int(json.loads(data).get("unread", 0))),
    )


def _bell_event(unread: int) -> str:
    bell = render_template("notifications/_bell.html", unread=unread, live=True).replace("\n", "")
    return sse.frame("unread", bell)


# ---- outbound channels (Apprise URLs) -----------------------------------------------------------------


@bp.get("/settings")
@login_required
def settings():
    with new_session() as session:
        rows = channels.for_user(session, current_user.id)
    return render_template("notifications/settings.html", channels=rows, severities=SEVERITIES, error=None, form={})


@bp.post("/channels")
@login_required
def add_channel():
    form = {key: request.form.get(key, "").strip() for key in ("label", "url", "min_severity")}
    try:
        channels.add(
            current_user.id,
            channels.NewChannel(label=form["label"], url=form["url"], min_severity=form["min_severity"]),
        )
    except channels.InvalidChannel as exc:
        with new_session() as session:
            rows = channels.for_user(session, current_user.id)
        form.pop("url")  # a secret: never sent back to the page
        return render_template(
            "notifications/settings.html", channels=rows, severities=SEVERITIES, error=str(exc), form=form
        ), 400
    flash('Channel added. Use "Send a test" to check it.', "success")
    return redirect(url_for(".settings"))


@bp.post("/channels/<int:channel_id>/delete")
@login_required
def delete_channel(channel_id: int):
    _owned(channels.remove, channel_id)
    flash("Channel removed.", "success")
    return redirect(url_for(".settings"))


@bp.post("/channels/<int:channel_id>/severity")
@login_required
def channel_severity(channel_id: int):
    try:
        _owned(channels.update, channel_id, request.form.get("min_severity", ""), request.form.get("enabled") == "1")
    except channels.InvalidChannel as exc:
        flash(str(exc), "error")
    return redirect(url_for(".settings"))


@bp.post("/channels/<int:channel_id>/test")
@login_required
def test_channel(channel_id: int):
    """Send a test message through this one channel now and say how it went."""
    outcome = _owned(channels.send_test, channel_id)
    flash(
        f"Test sent to {outcome.label}." if outcome.ok else f"Test to {outcome.label} failed: {outcome.error}",
        "success" if outcome.ok else "error",
    )
    return redirect(url_for(".settings"))


@bp.app_context_processor
def _bell_count():
    """A callable for base.html: only full pages ask the database, not every polled fragment."""
    return {"unread_notifications": _unread_now}


def _unread_now() -> int:
    if not current_user.is_authenticated:
        return 0
    try:
        with new_session() as session:
            return center.unread_count(session, current_user.id)
    except SQLAlchemyError:
        return 0


def _owned(call, *args):
    """Someone else's channel (core raises LookupError) is simply not found."""
    try:
        return call(current_user.id, *args)
    except LookupError:
        abort(404)
