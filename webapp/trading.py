"""Trading page: order ticket (live check + confirmation), portfolio, open orders, history, CSV, live SSE."""

from __future__ import annotations

import csv
import io
import logging
import secrets
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask import session as session_cookie
from flask_login import current_user, login_required
from htmx_flask import request
from sqlalchemy import select

from core import brokers
from core.exchanges.errors import ExchangeError, InvalidOrder
from core.exchanges.rules import decimal_str
from core.infra.bus import order_events_channel
from core.infra.db import new_session, session_scope
from core.models import BrokerConnection, Fill, Order, VenueAnswer, VenueFinding
from core.orders import dispatch, trailing_watch
from core.orders.ticket import Ticket, check_ticket, record_ticket
from webapp import sse, trading_market
from webapp.order_notices import claim_confirmation, submitted_notice
from webapp.scoping import owned_or_404

log = logging.getLogger(__name__)
LAST_BROKER = "trading_broker"

bp = Blueprint("trading", __name__, url_prefix="/trading")
bp.add_app_template_filter(decimal_str, "dec")  # 2.5E+3 -> 2500 in every table
OPEN_STATES = ("new", "sent", "unknown", "open", "partially_filled")
HISTORY_LIMIT = 500
RECENT_LIMIT = 10
TICKET_FIELDS = ("symbol", "side", "type", "size", "size_mode", "price", "stop_price", "trail_pct", "ladder")
LADDER_TEXT_MAX = 400


def _decimal(name: str) -> Decimal | None:
    raw = (request.form.get(name) or "").strip().replace(",", ".")
    if not raw:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise InvalidOrder(f"{name.replace('_', ' ')} must be a number, got {raw[:20]!r}") from None


def _ticket_from_form() -> Ticket:
    try:
        broker_id = int(request.form.get("broker_id", ""))
    except ValueError:
        raise InvalidOrder("choose a broker connection") from None
    size = _decimal("size")
    if size is None:
        raise InvalidOrder("give a size")
    return Ticket(
        broker_id=broker_id,
        symbol=request.form.get("symbol", ""),
        side=request.form.get("side", ""),
        type=request.form.get("type", ""),
        size_mode=request.form.get("size_mode", "quantity"),
        size=size,
        price=_decimal("price"),
        stop_price=_decimal("stop_price"),
        trail_pct=_decimal("trail_pct"),
        ladder=(request.form.get("ladder") or "")[:LADDER_TEXT_MAX],
    )


def _check(session, ticket: Ticket):
    """Check a ticket; the venue is asked only for what the stored rules cannot answer (price, funds)."""
    broker = session.get(BrokerConnection, ticket.broker_id)
    if broker is None or broker.user_id != current_user.id:
        raise InvalidOrder("choose one of your broker connections")
    exchange = brokers.exchange_for(broker)
    return check_ticket(
        session,
        current_user.id,
        ticket,
        last_price=lambda s: brokers.last_price(exchange, s),
        balances=exchange.balances,
    )


def _brokers(session) -> list[BrokerConnection]:
    return brokers.list_connections(session, current_user.id)


@bp.get("/")
@login_required
def index():
    with new_session() as session:
        connections = _brokers(session)
        labels = {b.id: b.label for b in connections}
        # The connection asked for, else the one last used (remembered in the signed session), else the first.
        chosen = request.args.get("broker", type=int) or session_cookie.get(LAST_BROKER)
        chosen = chosen if chosen in labels else (connections[0].id if connections else None)
        if chosen is not None:
            session_cookie[LAST_BROKER] = chosen
        symbols = brokers.symbols_of(session, chosen) if chosen else []
        # The market shown: the symbol asked for when the connection lists it, else BTCUSDT, else its first one.
        asked = (request.args.get("symbol") or "").upper()
        symbol = asked if asked in symbols else ("BTCUSDT" if "BTCUSDT" in symbols else next(iter(symbols), ""))
        broker = next((b for b in connections if b.id == chosen), None)
        return render_template(
            "trading/index.html",
            market=trading_market.market_of(session, broker, symbol) if broker and symbol else None,
            connections=connections,
            chosen=chosen,
            symbols=symbols,
            chosen_label=labels.get(chosen, ""),
            form=request.args,
            live=bool(connections),
            orders=(orders := _open(session)),
            watches=trailing_watch.watched_levels(session, orders),
            recent=_recent(session),
            labels=labels,
        )


@bp.post("/check")
@login_required
def check():
    """Live validation of the ticket (HTMX on every change)."""
    try:
        with new_session() as session:
            checked = _check(session, _ticket_from_form())
        return render_template("trading/_check.html", summary=checked.summary(), error=None)
    except ExchangeError as err:
        return render_template("trading/_check.html", summary=None, error=err.message if err.venue == "" else str(err))


@bp.post("/orders")
@login_required
def submit():
    """First post shows the confirmation; the confirmed post records the order and queues it."""
    try:
        with session_scope() as session:
            checked = _check(session, _ticket_from_form())
            if request.form.get("confirmed") != "1":
                return render_template(
                    "trading/confirm.html",
                    summary=checked.summary(),
                    fields=request.form,
                    broker_label=session.get(BrokerConnection, checked.ticket.broker_id).label,
                    back_url=_ticket_url(request.form),
                    nonce=secrets.token_urlsafe(16),
                )
            if not claim_confirmation(request.form.get("nonce", "")):
                flash("This confirmation was already used: the order was submitted once, not again.", "error")
                return redirect(url_for("trading.index", broker=checked.ticket.broker_id))
            order_ids = [order.id for order in record_ticket(session, current_user.id, checked)]
    except ExchangeError as err:
        flash(f"Order not placed: {err.message if not err.venue else err}", "error")
        return redirect(_ticket_url(request.form))
    for order_id in order_ids:  # a ladder's rungs, each its own order
        queued = dispatch.enqueue_order(order_id)
        flash(*submitted_notice(order_id, queued))
    ticket = checked.ticket  # the next ticket starts like this one, without its size and prices
    return redirect(
        url_for(
            "trading.index",
            broker=ticket.broker_id,
            symbol=ticket.symbol,
            side=ticket.side,
            type=ticket.type,
            size_mode=ticket.size_mode,
        )
    )


@bp.post("/orders/<int:order_id>/cancel")
@login_required
def cancel(order_id: int):
    with new_session() as session:
        owned_or_404(session, Order, order_id)
    queued = dispatch.enqueue_cancel(order_id)
    notice = (
        f"Cancel of order #{order_id} requested."
        if queued
        else "The order queue is unavailable; try again in a moment."
    )
    if request.htmx:
        # Shown in place: a flash would wait for (and confuse) the next full page.
        return _open_orders_html(
            notice=notice, notice_kind="ok" if queued else "bad", cancelling=order_id if queued else None
        )
    flash(notice, "success" if queued else "error")
    return redirect(url_for("trading.index"))


def _ticket_url(fields) -> str:
    """The ticket page again, with what the trader typed, for the same broker."""
    kept = {k: fields[k] for k in TICKET_FIELDS if fields.get(k)}
    return url_for("trading.index", broker=fields.get("broker_id"), **kept)


def _open(session) -> list[Order]:
    return list(
        session.scalars(
            select(Order)
            .where(Order.user_id == current_user.id, Order.state.in_(OPEN_STATES))
            .order_by(Order.id.desc())
        )
    )


def _recent(session) -> list[Order]:
    return list(
        session.scalars(
            select(Order).where(Order.user_id == current_user.id).order_by(Order.id.desc()).limit(RECENT_LIMIT)
        )
    )


def _labels(session) -> dict[int, str]:
    return {b.id: b.label for b in _brokers(session)}


def _open_orders_html(**notice) -> str:
    with new_session() as session:
        orders = _open(session)
        return render_template(
            "trading/_open_orders.html",
            orders=orders,
            watches=trailing_watch.watched_levels(session, orders),
            labels=_labels(session),
            **notice,
        )


@bp.get("/open")
@login_required
def open_orders():
    return _open_orders_html()


@bp.get("/recent")
@login_required
def recent_orders():
    with new_session() as session:
        return render_template("trading/_recent_orders.html", recent=_recent(session), labels=_labels(session))


@bp.get("/orders/<int:order_id>")
@login_required
def order_detail(order_id: int):
    """One order: our record, its state changes, its fills and, as the audit trail, every raw answer the
    venue gave about it (what to read when the venue and Aristobot disagree)."""
    with new_session() as session:
        order = owned_or_404(session, Order, order_id)
        trail = session.scalars(
            select(VenueAnswer).where(VenueAnswer.order_id == order.id).order_by(VenueAnswer.at, VenueAnswer.id)
        ).all()
        findings = session.scalars(
            select(VenueFinding)
            .where((VenueFinding.order_id == order.id) | (VenueFinding.replacement_order_id == order.id))
            .order_by(VenueFinding.id)
        ).all()
        return render_template(
            "trading/order.html", order=order, answers=trail, findings=findings, labels=_labels(session)
        )


@bp.get("/portfolio")
@login_required
def portfolio():
    with new_session() as session:
        broker = owned_or_404(session, BrokerConnection, request.args.get("broker", type=int) or 0)
        try:
            result, error = brokers.portfolio(broker), None
        except ExchangeError as err:
            result, error = None, str(err)
        return render_template("trading/_portfolio.html", portfolio=result, error=error, broker=broker)


def _filters() -> dict:
    return {k: request.args.get(k, "").strip() for k in ("broker", "symbol", "side", "state", "since", "until")}


def _date(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _filtered(model, filters: dict, time_column):
    query = select(model).where(model.user_id == current_user.id)
    if filters["broker"].isdigit():
        query = query.where(model.broker_id == int(filters["broker"]))
    if filters["symbol"]:
        query = query.where(model.symbol == filters["symbol"].upper())
    if filters["side"] in ("buy", "sell"):
        query = query.where(model.side == filters["side"])
    if filters.get("state") and model is Order:
        query = query.where(Order.state == filters["state"])
    if since := _date(filters["since"]):
        query = query.where(time_column >= since)
    if until := _date(filters["until"]):
        # A bare date (the date picker) means up to the end of that day, not its first instant.
        query = query.where(
            time_column < until + timedelta(days=1) if len(filters["until"]) == 10 else time_column <= until
        )
    return query.order_by(time_column.desc()).limit(HISTORY_LIMIT)


def _csv(name: str, header: list[str], rows: list[list]) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        buffer.getvalue(), mimetype="text/csv", headers={"Content-Disposition": f"attachment; filename={name}.csv"}
    )


def _num(value) -> str:
    return "" if value is None else format(value.normalize(), "f")


@bp.get("/history")
@login_required
def history():
    filters = _filters()
    with new_session() as session:
        orders = session.scalars(_filtered(Order, filters, Order.created_at)).all()
        labels = _labels(session)
        if request.args.get("format") == "csv":
            return _csv(
                "orders",
                [
                    "id",
                    "created_at",
                    "broker",
                    "symbol",
                    "side",
                    "type",
                    "quantity",
                    "price",
                    "stop_price",
                    "state",
                    "filled_quantity",
                    "average_price",
                    "error",
                ],
                [
                    [
                        o.id,
                        o.created_at.isoformat(),
                        labels.get(o.broker_id, ""),
                        o.symbol,
                        o.side,
                        o.type,
                        _num(o.quantity),
                        _num(o.price),
                        _num(o.stop_price),
                        o.state,
                        _num(o.filled_quantity),
                        _num(o.average_price),
                        o.error_message or "",
                    ]
                    for o in orders
                ],
            )
        return render_template(
            "trading/history.html",
            orders=orders,
            labels=labels,
            filters=filters,
            connections=_brokers(session),
            live=True,
        )


@bp.get("/trades")
@login_required
def trades():
    filters = _filters()
    with new_session() as session:
        fills = session.scalars(_filtered(Fill, filters, Fill.traded_at)).all()
        labels = _labels(session)
        if request.args.get("format") == "csv":
            return _csv(
                "trades",
                [
                    "traded_at",
                    "broker",
                    "symbol",
                    "side",
                    "quantity",
                    "price",
                    "fee",
                    "fee_asset",
                    "order_id",
                    "venue_trade_id",
                ],
                [
                    [
                        f.traded_at.isoformat(),
                        labels.get(f.broker_id, ""),
                        f.symbol,
                        f.side,
                        _num(f.quantity),
                        _num(f.price),
                        _num(f.fee),
                        f.fee_asset or "",
                        f.order_id or "",
                        f.venue_trade_id,
                    ]
                    for f in fills
                ],
            )
        return render_template(
            "trading/trades.html", fills=fills, labels=labels, filters=filters, connections=_brokers(session)
        )


@bp.get("/events")
@login_required
def events():
    """Server-sent events: one `order` event per state change of this user's orders (its JSON as data). The
    pages' panels fetch themselves again on it (`hx-trigger="sse:order"`): they are per-user queries and a
    broker call, rendered on request rather than pushed."""
    return sse.relay(order_events_channel(current_user.id), sse.RETRY, lambda data: sse.frame("order", data))
