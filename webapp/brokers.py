"""Brokers page: the trader's venue connections (keys encrypted, never shown again)."""

from __future__ import annotations

import requests
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from htmx_flask import make_response, request
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from core import brokers, paper_accounts
from core.exchanges.errors import ExchangeError
from core.exchanges.rules import decimal_str
from core.exchanges.spot.registry import VENUES
from core.infra.config import get_settings
from core.infra.db import new_session, session_scope
from core.models import BrokerConnection
from webapp.scoping import owned_or_404

bp = Blueprint("brokers", __name__, url_prefix="/brokers")
bp.add_app_template_filter(decimal_str, "dec")  # 2.5E+3 -> 2500 in every table


class ConnectionForm(FlaskForm):
    venue = SelectField("Venue", choices=[(v, v) for v in VENUES])
    label = StringField("Label", validators=[DataRequired(), Length(max=64)])
    api_key = PasswordField("API key", validators=[Optional(), Length(max=256)])
    api_secret = PasswordField("API secret", validators=[Optional(), Length(max=512)])
    passphrase = PasswordField("Passphrase (Bitget)", validators=[Optional(), Length(max=256)])
    base_url = StringField("Base URL override", validators=[Optional(), Length(max=255)])
    testnet = BooleanField("Testnet")

    def to_input(self) -> brokers.ConnectionInput:
        return brokers.ConnectionInput(
            venue=self.venue.data,
            label=self.label.data or "",
            api_key=self.api_key.data or None,
            api_secret=self.api_secret.data or None,
            passphrase=self.passphrase.data or None,
            base_url=self.base_url.data or None,
            testnet=bool(self.testnet.data),
        )


def _listing(form: ConnectionForm, status: int = 200):
    with new_session() as session:
        connections = brokers.list_connections(session, current_user.id)
        paper = paper_accounts.paper_account(session, current_user.id)
        return render_template(
            "brokers/index.html",
            connections=connections,
            form=form,
            paper=paper,
            paper_balance=get_settings().file.sim.demo_balance_usdt,
        ), status


@bp.get("/")
@login_required
def index():
    return _listing(ConnectionForm())


@bp.post("/")
@login_required
def create():
    form = ConnectionForm()
    if form.validate_on_submit():
        try:
            with session_scope() as session:
                broker = brokers.create_connection(session, current_user.id, form.to_input())
                label = broker.label
            flash(f"Connection {label} saved. Its keys are stored encrypted and will not be shown again.", "success")
            return redirect(url_for("brokers.index"))
        except brokers.BrokerError as exc:
            form.label.errors.append(str(exc))
    return _listing(form, 400)


@bp.route("/<int:broker_id>/edit", methods=["GET", "POST"])
@login_required
def edit(broker_id: int):
    with session_scope() as session:
        broker = owned_or_404(session, BrokerConnection, broker_id)
        form = ConnectionForm(obj=None if request.method == "POST" else broker)
        if request.method == "GET":
            form.api_key.data = form.api_secret.data = form.passphrase.data = ""
        if form.validate_on_submit():
            try:
                brokers.update_connection(session, broker, form.to_input())
                flash(f"Connection {broker.label} updated.", "success")
                return redirect(url_for("brokers.index"))
            except brokers.BrokerError as exc:
                form.label.errors.append(str(exc))
        status = 400 if request.method == "POST" else 200
        return render_template("brokers/edit.html", form=form, broker=broker), status


@bp.post("/<int:broker_id>/delete")
@login_required
def delete(broker_id: int):
    try:
        with session_scope() as session:
            broker = owned_or_404(session, BrokerConnection, broker_id)
            label = broker.label
            brokers.delete_connection(session, broker)
        flash(f"Connection {label} deleted.", "success")
    except brokers.BrokerError as exc:
        flash(str(exc), "error")
    return redirect(url_for("brokers.index"))


@bp.post("/<int:broker_id>/test")
@login_required
def test(broker_id: int):
    with new_session() as session:
        broker = owned_or_404(session, BrokerConnection, broker_id)
        check = brokers.check_connection(broker)
    return render_template("brokers/_check.html", check=check, broker_id=broker_id)


@bp.post("/<int:broker_id>/markets")
@login_required
def markets(broker_id: int):
    try:
        with session_scope() as session:
            broker = owned_or_404(session, BrokerConnection, broker_id)
            count = brokers.load_markets(session, broker)
        flash(f"{count} symbols loaded with their trading rules.", "success")
    except ExchangeError as err:
        flash(f"Could not load markets: {err}", "error")
    if request.htmx:
        return make_response("", 204, redirect=url_for("brokers.index"))
    return redirect(url_for("brokers.index"))


@bp.post("/paper")
@login_required
def paper():
    """One click: a funded account on the simulator, with its own generated keys."""
    try:
        paper_accounts.ensure_paper_account(current_user.id)
        flash("Paper account ready on the simulator: trade, run bots and webhooks on it with no real money.", "success")
    except (brokers.BrokerError, requests.RequestException) as exc:
        flash(f"The paper account could not be created: {_simulator_problem(exc)}", "error")
    return redirect(url_for("brokers.index"))


@bp.post("/paper/start-over")
@login_required
def paper_start_over():
    try:
        with session_scope() as session:
            paper_accounts.start_over(session, current_user.id)
        flash("A fresh paper account is ready; the old one is kept with its history under its end date.", "success")
    except (brokers.BrokerError, requests.RequestException) as exc:
        flash(f"Could not start over: {_simulator_problem(exc)}", "error")
    return redirect(url_for("brokers.index"))


def _simulator_problem(exc: Exception) -> str:
    if isinstance(exc, requests.RequestException):
        return "the simulator is not reachable; it runs with `make run` (see the System page)"
    return str(exc)


@bp.errorhandler(ValueError)
def _bad_value(_exc):
    abort(400)
