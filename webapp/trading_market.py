"""The Trading page's market: the symbol's chart (the heartbeat's stored candles, then live through the
Heartbeat page's SSE stream) with our fills and open orders drawn on it, the last price, the change over
24 h, the best bid and ask, a small depth view, and the positions on that symbol with "Close at market".
Prices and books come from what the heartbeat stored (core/candles/marks.py): no venue call on a page view.
The symbol asked for must be one the connection lists: anything else is a 404, never a Redis key."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

from flask import Blueprint, abort, jsonify, render_template
from flask_login import current_user, login_required
from htmx_flask import request
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.brokers import symbol_rules, symbols_of
from core.candles.marks import StoredPrices
from core.infra.db import new_session
from core.models import BrokerConnection, Fill, Order
from core.orders.states import FINAL_STATES
from webapp.home import positions_html
from webapp.numbers import qty
from webapp.scoping import owned_or_404

bp = Blueprint("trading_market", __name__, url_prefix="/trading/market")
DAY_MS = 24 * 3600 * 1000
CHART_FILLS = 200  # the latest fills drawn as markers


@dataclass(frozen=True)
class Market:
    """One broker's symbol as the page draws it: its heartbeat listing (None: no chart) and its grid."""

    broker_id: int
    symbol: str
    source_symbol: str | None
    source_venue: str
    tick: Decimal | None
    step: Decimal | None


def market_of(session: Session, broker: BrokerConnection, symbol: str) -> Market:
    prices = StoredPrices(session.connection())
    rules = symbol_rules(session, broker.id, symbol)
    return Market(
        broker.id,
        symbol,
        prices.symbol_for(broker.venue, symbol),
        prices.venue,
        rules.tick_size if rules else None,
        rules.step_size if rules else None,
    )


def _chosen(session: Session) -> tuple[BrokerConnection, str]:
    """The trader's connection and one of the symbols it lists (else 404)."""
    broker = owned_or_404(session, BrokerConnection, request.args.get("broker", type=int) or 0)
    symbol = (request.args.get("symbol") or "").upper()
    if symbol not in symbols_of(session, broker.id):
        abort(404, description=f"{broker.label} lists no such market. Choose one from the Market list.")
    return broker, symbol


@bp.get("/summary")
@login_required
def summary():
    """Last price, change over 24 h (from the stored 1m closes), best bid and ask (the stored top of book)."""
    with new_session() as session:
        broker, symbol = _chosen(session)
        market = market_of(session, broker, symbol)
        prices = StoredPrices(session.connection())
        last, top, change = None, None, None
        if market.source_symbol:
            top = prices.top(market.source_symbol)
            last = prices.latest(market.source_symbol)
            reference = prices.close_at(market.source_symbol, int(time.time() * 1000) - DAY_MS)
            if reference and last is not None:
                change = (last - reference) / reference * 100
        return render_template("trading/_market.html", market=market, last=last, top=top, change=change)


@bp.get("/depth")
@login_required
def depth():
    """The symbol's small book as the feeds stored it: bids and asks with their cumulative sizes."""
    with new_session() as session:
        broker, symbol = _chosen(session)
        market = market_of(session, broker, symbol)
        book = StoredPrices(session.connection()).depth(market.source_symbol) if market.source_symbol else None
    return render_template("trading/_depth.html", market=market, book=book)


@bp.get("/positions")
@login_required
def positions():
    with new_session() as session:
        broker, symbol = _chosen(session)
    return positions_html(broker.id, symbol, back="trading")


@bp.get("/overlay.json")
@login_required
def overlay():
    """Our fills (markers) and open orders (price lines) on this broker's symbol, the trader's only."""
    with new_session() as session:
        broker, symbol = _chosen(session)
        step = market_of(session, broker, symbol).step
        fills = session.scalars(
            select(Fill)
            .where(Fill.user_id == current_user.id, Fill.broker_id == broker.id, Fill.symbol == symbol)
            .order_by(Fill.traded_at.desc())
            .limit(CHART_FILLS)
        ).all()
        orders = session.scalars(
            select(Order).where(
                Order.user_id == current_user.id,
                Order.broker_id == broker.id,
                Order.symbol == symbol,
                Order.state.not_in([state.value for state in FINAL_STATES]),
            )
        ).all()
    return jsonify(
        {
            "fills": [
                {
                    "time": int(f.traded_at.timestamp()),
                    "side": f.side,
                    "price": str(f.price),
                    "quantity": qty(f.quantity, step),
                }
                for f in reversed(fills)
            ],
            "orders": [
                {"id": o.id, "side": o.side, "type": o.type, "price": str(line)}
                for o in orders
                for line in (o.price, o.stop_price)
                if line is not None
            ],
        }
    )
