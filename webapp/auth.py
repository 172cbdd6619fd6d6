from __future__ import annotations

import logging
import secrets
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from core import accounts
from core.infra.db import session_scope
from core.models import User
from webapp.extensions import limiter
from webapp.forms import ChangePasswordForm, LoginForm

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)


def local_target(target: str | None) -> str | None:
    """`target` if it is a path of this site, else None: never an open redirect.

    Refused: anything with a scheme or host (`https://x`, `//x`), backslashes (browsers read `/\\x`
    as `//x`), and control characters or spaces (browsers drop tabs and newlines, so `/\\t/x` is `//x`).
    """
    if not target or len(target) > 2048 or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in target):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def _sign_in(user: User, *, remember: bool) -> None:
    """A fresh session for `user`: a new random nonce, so the remember-me cookie is new at each sign-in."""
    session.clear()
    user.session_nonce = secrets.token_urlsafe(16)
    login_user(user, remember=remember)


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
        with session_scope() as db:
            user = accounts.authenticate(db, form.username.data, form.password.data)
            if user is not None:
                _sign_in(user, remember=form.remember.data)
                log.info("login", extra={"user_id": user.id})
                return redirect(local_target(request.args.get("next")) or url_for("home.index"))
        log.info("login_failed", extra={"username": form.username.data[:64]})
        flash("Wrong username or password.", "error")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    """Signs the user out everywhere: every session and remember-me cookie of theirs stops working."""
    with session_scope() as db:
        db.get(User, current_user.id).revoke_sessions()
    logout_user()
    session.clear()
    flash("Signed out. Every session of this account, on every device, has ended.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        with session_scope() as db:
            user = db.get(User, current_user.id)
            try:
                accounts.change_password(user, form.current.data, form.new.data)
            except accounts.AccountError as exc:
                form.current.errors.append(str(exc))
                return render_template("auth/password.html", form=form), 400
            db.flush()
            # Every other session is now signed out; this one continues under the new epoch.
            _sign_in(user, remember=False)
        flash("Password changed. Every other session is signed out.", "success")
        return redirect(url_for("home.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/password.html", form=form), status
