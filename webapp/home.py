"""Home: the trader's dashboard at one glance — equity across every broker and its curve, open positions with
live unrealised P&L and "Close at market", running bots, the latest webhook alerts and notifications, open
orders and the platform's health. Every part is a fragment that refreshes itself (polling, and the order
events' SSE stream of the Trading page); every query is scoped to the logged-in trader; a page view asks no
venue (core/portfolio.py reads stored balances, fills and prices)."""

from __future__ import annotations

import secrets

from flask import Blueprint, flash, jsonify, redirect, render_template, url_for
from flask_login import current_user, login_required
from htmx_flask import request
from sqlalchemy import select

from core import portfolio
from core.candles.marks import StoredPrices
from core.exchanges.errors import InvalidOrder
from core.health import system_health
from core.infra.db import new_session, session_scope
from core.models import Bot, BrokerConnection, Notification, Webhook, WebhookAlert
from core.orders import dispatch
from webapp.order_notices import claim_confirmation, submitted_notice

bp = Blueprint("home", __name__)
LATEST = 6  # alerts and notifications shown


@bp.get("/")
@login_required
def index():
    return render_template("home.html")


def _labels(session) -> dict[int, str]:
    query = select(BrokerConnection.id, BrokerConnection.label).where(BrokerConnection.user_id == current_user.id)
    return {broker_id: label for broker_id, label in session.execute(query)}


@bp.get("/dashboard/equity")
@login_required
def equity():
    with new_session() as session:
        found = portfolio.load_equity(session, current_user.id, StoredPrices(session.connection()))
        return render_template("home/_equity.html", equity=found, labels=_labels(session))


@bp.get("/dashboard/equity.json")
@login_required
def equity_json():
    """The curve for the chart: [{time (s), value}], one point per timeframe candle and one for now."""
    with new_session() as session:
        found = portfolio.load_equity(session, current_user.id, StoredPrices(session.connection()))
    return jsonify(
        {
            "timeframe": found.timeframe,
            "points": [{"time": at // 1000, "value": float(value)} for at, value in found.points],
        }
    )


def positions_html(broker_id: int | None = None, symbol: str | None = None, back: str = "home") -> str:
    """The open positions table (this page's, and the Trading page's for one broker and symbol)."""
    with new_session() as session:
        rows = portfolio.open_positions(
            session, current_user.id, StoredPrices(session.connection()), broker_id=broker_id, symbol=symbol
        )
    return render_template("home/_positions.html", positions=rows, back=back, nonce=secrets.token_urlsafe(16))


@bp.get("/dashboard/positions")
@login_required
def positions():
    return positions_html()


@bp.post("/positions/close")
@login_required
def close_position():
    """Close one open position at market: the order is recorded under its owner and queued like any order, and
    the trader is told what the venue said. The page asked for confirmation (data-confirm) before posting."""
    form = request.form
    broker_id = form.get("broker_id", type=int) or 0
    symbol, source = (form.get("symbol") or "").upper(), form.get("source") or ""
    back = (
        url_for("trading.index", broker=broker_id, symbol=symbol)
        if form.get("back") == "trading"
        else url_for("home.index")
    )
    if not claim_confirmation(form.get("nonce", "")):
        flash("This close was already sent once; it was not sent again.", "error")
        return redirect(back)
    try:
        with session_scope() as session:
            order_id = portfolio.close_position(session, current_user.id, broker_id, symbol, source).id
    except (InvalidOrder, LookupError) as err:
        flash(f"Nothing closed: {err}", "error")
        return redirect(back)
    flash(*submitted_notice(order_id, dispatch.enqueue_order(order_id)))
    return redirect(back)


@bp.get("/dashboard/bots")
@login_required
def bots():
    with new_session() as session:
        rows = session.scalars(
            select(Bot).where(Bot.user_id == current_user.id, Bot.state != "paused").order_by(Bot.name)
        ).all()
        return render_template("home/_bots.html", bots=rows)


@bp.get("/dashboard/activity")
@login_required
def activity():
    """The latest webhook alerts of the trader's webhooks and the latest notifications."""
    with new_session() as session:
        alerts = session.execute(
            select(WebhookAlert, Webhook.name)
            .join(Webhook, WebhookAlert.webhook_id == Webhook.id)
            .where(Webhook.user_id == current_user.id)
            .order_by(WebhookAlert.id.desc())
            .limit(LATEST)
        ).all()
        notes = session.scalars(
            select(Notification)
            .where(Notification.user_id == current_user.id)
            .order_by(Notification.id.desc())
            .limit(LATEST)
        ).all()
        return render_template("home/_activity.html", alerts=alerts, notes=notes)


@bp.get("/dashboard/health")
@login_required
def health():
    """The platform's state for a trader: up, degraded or down, and which part is not working (names only)."""
    report = system_health()
    return render_template(
        "home/_health.html",
        status=report["status"],
        down=report["down"],
        stale=report["feeds"]["stale"],
        stores={"database": report["postgres"]["ok"], "Redis": report["redis"]["ok"]},
    )
