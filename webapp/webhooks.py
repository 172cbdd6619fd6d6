"""TradingView webhooks: the trader's pages and the public receiver `POST /webhooks/tv/<token>`."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from core import venue_exits
from core.infra.bus import get_redis, task_sender
from core.infra.config import get_settings
from core.infra.db import get_engine, new_session, session_scope
from core.models import BrokerConnection, Webhook
from core.webhooks import monitor
from core.webhooks.cadence import TIMEFRAME_SECONDS
from core.webhooks.handoff import hand_off
from core.webhooks.payload import ACTIONS, MAX_BODY_BYTES, alert_message_template
from core.webhooks.receiver import IncomingRequest, receive
from core.webhooks.setup import (
    TRADINGVIEW_IPS,
    WebhookSettings,
    WebhookSettingsError,
    create_webhook,
    parse_allowlist,
    pause_webhook,
    resume_webhook,
    rotate_token,
    update_webhook,
    webhook_token,
    webhooks_of,
)
from core.webhooks.strangers import Stranger, note_stranger
from webapp.auth import local_target
from webapp.extensions import csrf, limiter
from webapp.scoping import owned_or_404

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


# --- the public receiver --------------------------------------------------------------------------


def _read_body() -> tuple[bytes, int]:
    declared = request.content_length
    try:
        body = request.stream.read(MAX_BODY_BYTES + 1)
    except RequestEntityTooLarge:
        body = b""
    return body, max(declared or 0, len(body))


@bp.post("/tv/<token>")
@csrf.exempt
@limiter.exempt  # each webhook has its own rate limit (receiver.RateLimiter), which works without Redis
def receive_alert(token: str):
    body, size = _read_body()
    incoming = IncomingRequest(
        token=token,
        body=body,
        body_size=size,
        content_type=request.content_type,
        peer_address=request.remote_addr,
        headers={name.lower(): value for name, value in request.headers.items()},
    )
    try:
        with get_engine().begin() as connection:
            receipt = receive(connection, incoming)
    except OperationalError:
        # Postgres is the one thing we cannot answer without: TradingView should see a failure, not a 202.
        log.error("webhook_store_failed", extra={"body_size": size})
        return jsonify({"status": "unavailable"}), 503
    if receipt.status == "unknown":
        stranger = Stranger(request.remote_addr, body, size, request.headers.get("User-Agent", ""))
        if not note_stranger(get_redis(), stranger, get_settings().file.webhooks.unknown_token_per_minute):
            return jsonify({"status": "rate_limited", "reason": "too many requests with unknown tokens"}), 429
        return "", 404
    response = jsonify(receipt.as_json())
    response.status_code = receipt.http_status
    if receipt.status == "accepted":
        # After the answer: the web process stays free to receive the next alerts.
        response.call_on_close(lambda: hand_off(receipt.alert_id, get_redis(), task_sender()))
    return response


# --- the trader's pages ---------------------------------------------------------------------------


class WebhookForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    broker_id = SelectField("Broker", coerce=int)
    symbol = StringField("Symbol (empty: take it from the alert's {{ticker}})", validators=[Length(max=32)])
    size_mode = SelectField(
        "Default size",
        choices=[
            ("quote", "Quote amount (e.g. USDT)"),
            ("quantity", "Quantity (base asset)"),
            ("percent", "% of free balance"),
        ],
    )
    size_value = StringField("Size", validators=[DataRequired(), Length(max=40)])
    allow_buy = BooleanField("buy", default=True)
    allow_sell = BooleanField("sell", default=True)
    allow_close = BooleanField("close", default=True)
    allow_cancel = BooleanField("cancel", default=True)
    cadence = SelectField(
        "Expected cadence",
        choices=[("", "none (no MISS detection)")] + [(tf, f"one alert every {tf}") for tf in TIMEFRAME_SECONDS],
    )
    grace_seconds = IntegerField(
        "Grace (seconds, grows with long timeframes)", default=15, validators=[NumberRange(0, 3600)]
    )
    ip_allowlist = TextAreaField("IP allow-list (empty: any sender)", validators=[Optional(), Length(max=2000)])
    tradingview_ips = BooleanField("Add TradingView's published sender addresses")
    trust_proxy = BooleanField("Behind my reverse proxy: read the sender address from X-Forwarded-For")
    rate_limit_per_minute = IntegerField(
        "Rate limit (alerts per minute)", default=120, validators=[NumberRange(1, 10_000)]
    )

    def settings(self) -> WebhookSettings:
        try:
            size = Decimal(self.size_value.data.strip())
        except InvalidOperation:
            raise WebhookSettingsError(f"size {self.size_value.data!r} is not a number") from None
        allowlist = list(parse_allowlist(self.ip_allowlist.data or ""))
        if self.tradingview_ips.data:
            allowlist += [ip for ip in TRADINGVIEW_IPS if ip not in allowlist]
        return WebhookSettings(
            name=self.name.data,
            broker_id=self.broker_id.data,
            symbol=self.symbol.data or None,
            size_mode=self.size_mode.data,
            size_value=size,
            allowed_actions=tuple(action for action in ACTIONS if getattr(self, f"allow_{action}").data),
            cadence=self.cadence.data or None,
            grace_seconds=self.grace_seconds.data,
            ip_allowlist=tuple(allowlist),
            trust_proxy=self.trust_proxy.data,
            rate_limit_per_minute=self.rate_limit_per_minute.data,
        )

    def fill_from(self, webhook: Webhook) -> None:
        self.name.data, self.broker_id.data, self.symbol.data = webhook.name, webhook.broker_id, webhook.symbol
        self.size_mode.data, self.size_value.data = webhook.size_mode, format(webhook.size_value.normalize(), "f")
        for action in ACTIONS:
            getattr(self, f"allow_{action}").data = action in webhook.allowed_actions
        self.cadence.data, self.grace_seconds.data = webhook.cadence or "", webhook.grace_seconds
        self.ip_allowlist.data = "\n".join(webhook.ip_allowlist)
        self.trust_proxy.data, self.rate_limit_per_minute.data = webhook.trust_proxy, webhook.rate_limit_per_minute


def _form(session, webhook: Webhook | None = None) -> WebhookForm:
    form = WebhookForm()
    brokers = session.scalars(
        select(BrokerConnection).where(BrokerConnection.user_id == current_user.id).order_by(BrokerConnection.label)
    ).all()
    form.broker_id.choices = [(broker.id, f"{broker.label} ({broker.venue})") for broker in brokers]
    if webhook is not None and request.method == "GET":
        form.fill_from(webhook)
    return form


def _url_of(webhook: Webhook) -> str:
    return url_for("webhooks.receive_alert", token=webhook_token(webhook), _external=True)


@bp.route("/", methods=["GET", "POST"])
@login_required
def index():
    with new_session() as session:
        form = _form(session)
        if form.validate_on_submit():
            try:
                webhook, _token = create_webhook(session, current_user.id, form.settings())
                session.commit()
                flash(f"Webhook {webhook.name} created: paste its URL and message into TradingView.", "success")
                return redirect(url_for("webhooks.detail", webhook_id=webhook.id))
            except WebhookSettingsError as exc:
                session.rollback()
                form.form_errors.append(str(exc))
        webhooks = webhooks_of(session, current_user.id)
        status = 400 if request.method == "POST" else 200
        return render_template("webhooks/index.html", form=form, webhooks=webhooks), status


@bp.route("/<int:webhook_id>", methods=["GET", "POST"])
@login_required
def detail(webhook_id: int):
    with new_session() as session:
        webhook = owned_or_404(session, Webhook, webhook_id)
        form = _form(session, webhook)
        if form.validate_on_submit():
            try:
                update_webhook(session, webhook, form.settings())
                session.commit()
                flash("Webhook saved.", "success")
                return redirect(url_for("webhooks.detail", webhook_id=webhook.id))
            except WebhookSettingsError as exc:
                session.rollback()
                form.form_errors.append(str(exc))
        status = 400 if request.method == "POST" else 200
        return render_template(
            "webhooks/detail.html",
            webhook=webhook,
            form=form,
            url=_url_of(webhook),
            message=alert_message_template(webhook.symbol),
            message_with_exits=alert_message_template(webhook.symbol, with_exits=True),
            venue_flags=venue_exits.flags(session, webhook_id=webhook.id),
        ), status


@bp.get("/<int:webhook_id>/reliability")
@login_required
def reliability(webhook_id: int):
    with new_session() as session:
        webhook = owned_or_404(session, Webhook, webhook_id)
        requests = monitor.request_log(session, webhook)
        return render_template(
            "webhooks/reliability.html",
            webhook=webhook,
            stats=monitor.reliability(session, webhook),
            timeline=monitor.timeline(session, webhook),
            requests=requests,
            orders=monitor.orders_by_alert(session, requests),
        )


@bp.get("/<int:webhook_id>/requests")
@login_required
def requests_log(webhook_id: int):
    """The request log alone, for HTMX polling and paging (?before=<alert id>)."""
    with new_session() as session:
        webhook = owned_or_404(session, Webhook, webhook_id)
        before = request.args.get("before", type=int)
        requests = monitor.request_log(session, webhook, before_id=before)
        return render_template(
            "webhooks/_requests.html",
            webhook=webhook,
            requests=requests,
            orders=monitor.orders_by_alert(session, requests),
        )


def _change(webhook_id: int, change, message: str):
    with session_scope() as session:
        webhook = owned_or_404(session, Webhook, webhook_id)
        change(webhook)
    flash(message, "success")
    return redirect(local_target(request.form.get("next")) or url_for("webhooks.detail", webhook_id=webhook_id))


@bp.post("/<int:webhook_id>/resume")
@login_required
def resume(webhook_id: int):
    return _change(webhook_id, resume_webhook, "Webhook resumed: alerts are traded again.")


@bp.post("/<int:webhook_id>/pause")
@login_required
def pause(webhook_id: int):
    return _change(
        webhook_id,
        lambda webhook: pause_webhook(webhook, "paused by the trader"),
        "Webhook paused: its alerts are stored and refused.",
    )


@bp.post("/<int:webhook_id>/rotate")
@login_required
def rotate(webhook_id: int):
    return _change(webhook_id, rotate_token, "New URL generated: update the alert in TradingView.")


@bp.post("/<int:webhook_id>/delete")
@login_required
def delete(webhook_id: int):
    with session_scope() as session:
        session.delete(owned_or_404(session, Webhook, webhook_id))
    flash("Webhook deleted; its URL answers 404 from now on.", "success")
    return redirect(url_for("webhooks.index"))
