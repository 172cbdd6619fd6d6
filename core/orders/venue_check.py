"""Orders at the venue that Aristobot did not place, found by reconciliation (core.reconciliation).

Each pass over a connection lists its open orders at the venue with one account-wide call. An open
order that none of ours matches (by client order id, an OCO leg's included, or by venue order id) was
placed outside Aristobot (by hand in the exchange's app, another tool): it is recorded as an order row
whose `source` is 'external', noted as a finding, and the trader is told.

Why a source and not a state: the one transition table (core/orders/states.py) says where an order is
in its life, and an external order shares that life from the moment we see it (open or partially
filled, then filled, cancelled or expired at the venue); who placed it is what differs, which is what
`source` already tells for manual, webhook and bot orders. The row enters the table at the state the
venue reports (a `found_at_venue` event: no transition of ours leads there, we never sent it) and is
then followed like any order, by its venue order id (it has no client order id of ours): synced when
the listing shows it changed or no longer lists it, cancellable from the trading page.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.exchanges.answers import HeardAnswer, bounded_payload, listen
from core.exchanges.models import VenueOrder
from core.exchanges.spot.base import Exchange
from core.infra.db import session_scope
from core.models import BrokerConnection, Order, OrderEvent, VenueFinding
from core.notifications import events as notifications
from core.orders import answers, placement
from core.orders.states import OrderState

log = logging.getLogger(__name__)

EXTERNAL = "external"
LEG_SUFFIXES = ("-tp", "-sl")
NOTIFY_EACH_UP_TO = 3  # more new external orders in one pass: one notification says how many
VENUE_STATE = {"open": OrderState.OPEN, "partially_filled": OrderState.PARTIALLY_FILLED}
LISTED_STATES = tuple(state.value for state in VENUE_STATE.values())


@dataclass(frozen=True)
class ExternalOrder:
    order_id: int
    symbol: str
    side: str
    what: str


def our_client_id(client_order_id: str) -> str:
    """The client order id of our row for a venue order (an OCO leg carries its OCO's id plus a suffix)."""
    for suffix in LEG_SUFFIXES:
        if client_order_id.endswith(suffix):
            return client_order_id[: -len(suffix)]
    return client_order_id


def record_finding(session: Session, broker: BrokerConnection, kind: str, detail: dict[str, Any], **refs: Any) -> None:
    session.add(VenueFinding(user_id=broker.user_id, broker_id=broker.id, kind=kind, detail=detail, **refs))


def _describe(venue_order: VenueOrder) -> str:
    size = f" {venue_order.quantity.normalize():f}" if venue_order.quantity is not None else ""
    at = f" at {venue_order.price.normalize():f}" if venue_order.price is not None else ""
    return f"{venue_order.side} {venue_order.type.replace('_', ' ')}{size} {venue_order.symbol}{at}"


def _external_row(venue_order: VenueOrder, broker: BrokerConnection) -> Order:
    state = VENUE_STATE[venue_order.status]
    return Order(
        user_id=broker.user_id,
        broker_id=broker.id,
        client_order_id=None,  # the venue's client id is the trader's, not ours: it stays in the raw answer
        venue_order_id=venue_order.venue_order_id,
        symbol=venue_order.symbol,
        side=venue_order.side if venue_order.side in ("buy", "sell") else "buy",
        type=venue_order.type[:24],
        quantity=venue_order.quantity,
        price=venue_order.price,
        state=state.value,
        filled_quantity=venue_order.filled_qty,
        average_price=venue_order.avg_price,
        source=EXTERNAL,
        events=[
            OrderEvent(
                from_state=None,
                to_state=state.value,
                cause="found_at_venue",
                detail={"venue_client_order_id": venue_order.client_order_id},
            )
        ],
    )


def _raw_answer(venue_order: VenueOrder, listing: HeardAnswer | None) -> HeardAnswer:
    """The listing's entry for this order, as the first answer of its trail."""
    raw = dict(venue_order.raw)
    return HeardAnswer(
        kind="query",
        at=listing.at if listing else datetime.now(UTC),
        http_status=listing.http_status if listing else 200,
        path=listing.path if listing else "open orders",
        payload=bounded_payload(json.dumps(raw, default=str), raw, is_json=True),
    )


def check_open_orders(broker_id: int, exchange: Exchange) -> tuple[list[VenueOrder], list[ExternalOrder]]:
    """List the connection's open orders at the venue; record (and tell) the ones we do not know, and
    sync the external ones the listing shows changed or no longer lists. Raises ExchangeError when the
    venue cannot list them: nothing is changed then."""
    with listen("query") as heard:
        listing = exchange.open_orders()
    found: list[ExternalOrder] = []
    with session_scope() as session:
        # One pass per connection at a time records an external order once.
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('venue_check'), :b)"), {"b": broker_id})
        broker = session.get_one(BrokerConnection, broker_id)
        client_ids = {our_client_id(o.client_order_id) for o in listing if o.client_order_id}
        venue_ids = {o.venue_order_id for o in listing}
        known_clients = set(session.scalars(select(Order.client_order_id).where(Order.client_order_id.in_(client_ids))))
        known_venue_ids = set(
            session.scalars(
                select(Order.venue_order_id).where(Order.broker_id == broker_id, Order.venue_order_id.in_(venue_ids))
            )
        )
        for venue_order in listing:
            if (
                our_client_id(venue_order.client_order_id) in known_clients
                or venue_order.venue_order_id in known_venue_ids
            ):
                continue
            if venue_order.status not in VENUE_STATE:
                continue
            order = _external_row(venue_order, broker)
            session.add(order)
            session.flush()
            answers.store(session, order.id, [_raw_answer(venue_order, heard[0] if heard else None)])
            what = _describe(venue_order)
            record_finding(session, broker, "external_order", {"what": what}, order_id=order.id)
            found.append(ExternalOrder(order.id, venue_order.symbol, venue_order.side, what))
        listed = {o.venue_order_id: o for o in listing}
        externals = session.execute(
            select(Order.id, Order.venue_order_id, Order.filled_quantity).where(
                Order.broker_id == broker_id, Order.source == EXTERNAL, Order.state.in_(LISTED_STATES)
            )
        ).all()
        changed = [
            order_id
            for order_id, venue_id, filled in externals
            if venue_id not in listed or listed[venue_id].filled_qty != filled
        ]
        user_id, label = broker.user_id, broker.label
    if found:
        log.warning("external_orders_found", extra={"broker_id": broker_id, "orders": [f.order_id for f in found]})
        _tell(user_id, broker_id, label, found)
    for order_id in changed:
        placement.sync(order_id)
    return listing, found


def _tell(user_id: int, broker_id: int, label: str, found: list[ExternalOrder]) -> None:
    if len(found) > NOTIFY_EACH_UP_TO:
        notifications.venue_finding(
            user_id,
            "external_order",
            f"{len(found)} orders placed outside Aristobot on {label}",
            "Found open at the venue, unknown to Aristobot; recorded as external orders: "
            + ", ".join(f"#{f.order_id} {f.what}" for f in found[:20]),
            "/trading/",
            f"external:{broker_id}:{found[0].order_id}:{len(found)}",
        )
        return
    for order in found:
        notifications.venue_finding(
            user_id,
            "external_order",
            f"Order placed outside Aristobot on {label}: {order.what}",
            f"Found open at the venue and unknown to Aristobot; recorded as external order #{order.order_id}.",
            f"/trading/orders/{order.order_id}",
            f"external:{order.order_id}",
        )
