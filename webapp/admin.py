from __future__ import annotations

import socket
from urllib.parse import quote

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from core import accounts
from core.halt import set_trading_halted, trading_halted
from core.health import system_health
from core.infra.config import get_settings
from core.infra.db import new_session, session_scope
from core.orders import dispatch
from core.stop import open_orders
from core.supervision.record import read_supervision
from webapp.forms import CreateUserForm
from webapp.scoping import admin_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users():
    form = CreateUserForm()
    status = 200
    if form.validate_on_submit():
        try:
            with session_scope() as session:
                accounts.create_user(session, form.username.data, form.password.data, is_admin=form.is_admin.data)
            flash(f"User {form.username.data} created.", "success")
            return redirect(url_for("admin.users"))
        except accounts.AccountError as exc:
            form.username.errors.append(str(exc))
    if request.method == "POST":
        status = 400
    with new_session() as session:
        listing = accounts.list_users(session)
        halted = trading_halted(session)
    return render_template("admin/users.html", form=form, users=listing, halted=halted), status


@bp.post("/users/<username>/active")
@admin_required
def set_active(username: str):
    active = request.form.get("active") == "1"
    cancel_orders = not active and request.form.get("cancel_orders") == "1"
    try:
        with session_scope() as session:
            user, paused = accounts.set_active(session, username, active)
            to_cancel = [order.id for order in open_orders(session, user.id)] if cancel_orders else []
    except accounts.AccountError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.users"))
    queued = sum(dispatch.enqueue_cancel(order_id) for order_id in to_cancel)
    message = f"User {username} {'enabled' if active else 'disabled'}"
    message += f"; {paused}" if paused else ""
    message += f"; {queued} open order(s) sent for cancelling" if cancel_orders else ""
    flash(message + ".", "success")
    return redirect(url_for("admin.users"))


@bp.post("/halt")
@admin_required
def halt():
    """The global trading halt: no new order from any source while on."""
    halted = request.form.get("halted") == "1"
    with session_scope() as session:
        set_trading_halted(session, halted, current_user.id)
    flash(
        "Trading is halted: no new order is sent." if halted else "Trading resumed.", "error" if halted else "success"
    )
    return redirect(url_for("admin.users"))


def flower_url() -> str:
    """Flower on the host the admin reached this page by."""
    return f"http://{request.host.split(':')[0]}:{get_settings().file.flower.port}"


def queue_task_lists(report: dict) -> dict[str, str]:
    """Each queue's task list in Flower: the tasks of the worker process that consumes it, whose node name is
    `<process>@<host>` (the Procfile's `-n <process>@%h`). Flower lists a worker's tasks only when it sends task
    events (celeryconfig.py says which do)."""
    host = socket.gethostname()
    return {
        queue: f"{flower_url()}/tasks?worker={quote(f'{process}@{host}')}"
        for process, proc in report["processes"].items()
        for queue in (proc.get("info") or {}).get("queues", [])
    }


def _status_page(template: str, **context) -> str:
    report = system_health()
    return render_template(template, report=report, task_lists=queue_task_lists(report), **context)


@bp.get("/system")
@admin_required
def system():
    return _status_page(
        "admin/system.html", flower_url=flower_url(), supervision=read_supervision(get_settings().var_dir)
    )


@bp.get("/system/status")
@admin_required
def system_status():
    return _status_page("admin/_system_status.html")
