from __future__ import annotations

import logging

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from core import accounts
from core.db import session_scope
from core.models import User
from webapp.extensions import limiter
from webapp.forms import ChangePasswordForm, LoginForm

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)


def _login_key() -> str:
    return f"login:{request.form.get('username', '').strip().lower()}"


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
@limiter.limit("5 per minute", methods=["POST"], key_func=_login_key)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if form.validate_on_submit():
        with session_scope() as session:
            user = accounts.authenticate(session, form.username.data, form.password.data)
            if user is not None:
                login_user(user, remember=form.remember.data)
                log.info("login", extra={"user_id": user.id})
                target = request.args.get("next", "")
                # Only same-site relative targets: never an open redirect.
                return redirect(target if target.startswith("/") and not target.startswith("//")
                                else url_for("home.index"))
        log.info("login_failed", extra={"username": form.username.data[:64]})
        flash("Wrong username or password.", "error")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        with session_scope() as session:
            user = session.get(User, current_user.id)
            try:
                accounts.change_password(user, form.current.data, form.new.data)
            except accounts.AccountError as exc:
                form.current.errors.append(str(exc))
                return render_template("auth/password.html", form=form), 400
        flash("Password changed.", "success")
        return redirect(url_for("home.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/password.html", form=form), status
