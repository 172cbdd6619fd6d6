from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from core import accounts
from core.config import get_settings
from core.db import new_session, session_scope
from core.health import system_health
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
    return render_template("admin/users.html", form=form, users=listing), status


@bp.post("/users/<username>/active")
@admin_required
def set_active(username: str):
    active = request.form.get("active") == "1"
    try:
        with session_scope() as session:
            accounts.set_active(session, username, active)
        flash(f"User {username} {'enabled' if active else 'disabled'}.", "success")
    except accounts.AccountError as exc:
        flash(str(exc), "error")
    return redirect(url_for("admin.users"))


@bp.get("/system")
@admin_required
def system():
    flower_port = get_settings().file.flower.port
    return render_template("admin/system.html", report=system_health(), flower_port=flower_port)


@bp.get("/system/status")
@admin_required
def system_status():
    return render_template("admin/_system_status.html", report=system_health())
