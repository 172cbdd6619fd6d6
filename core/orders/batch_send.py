"""Sending the orders prepared together (a batch of webhook alerts recorded in one transaction): each
request to its venue in turn, then all of the answers recorded in one transaction instead of one each.

Their `sent` state is committed before (core.orders.placement.prepare), so a worker killed between two
requests leaves the unanswered orders `sent`: the next sync asks the venue by their client order ids."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import noload

from core.exchanges.spot.base import Exchange
from core.infra.db import session_scope
from core.models import Order
from core.orders import answers, placement, venue_call
from core.orders.events import publish

# Built once, like every statement on the order path.
_LOCK_ORDERS = (
    select(Order)
    .where(Order.id.in_(bindparam("order_ids", expanding=True)))
    .options(noload(Order.events))
    .order_by(Order.id)
    .with_for_update()
)


def send_all(prepared: list[placement.PreparedOrder]) -> None:
    """What send_prepared does for one order, for all of them: the pages told (one message batch per
    trader), each request sent (in the given order), the answers heard until then recorded even if a
    request raised, the pages told again, then what follows each answer (missing fills, after-fill steps)."""
    _tell_pages(prepared)
    calls: list[tuple[placement.PreparedOrder, Exchange, venue_call.VenueCall]] = []
    try:
        for order in prepared:
            if order.request is None:
                continue  # rejected by the venue's rules or the halt: nothing to send
            if order.exchange is None:
                raise ValueError(f"order {order.order_id}: a prepared request without its exchange")
            called = venue_call.call_venue(order.exchange, order.request, order.deadline)
            calls.append((order, order.exchange, called))
    finally:
        afters = _record(calls) if calls else []
    _tell_pages([order for order, _, _ in calls])
    for after in afters:
        placement.follow_up(after)


def _tell_pages(prepared: list[placement.PreparedOrder]) -> None:
    by_user: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for order in prepared:
        by_user[order.user_id] += order.outcome.events
        order.outcome.events = []
    for user_id, events in by_user.items():
        if events:
            publish(user_id, events)


def _record(calls: list[tuple[placement.PreparedOrder, Exchange, venue_call.VenueCall]]) -> list[placement.AfterCall]:
    with session_scope() as session:
        # As for one order (placement._send): their `sent` state was committed durably before the calls.
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        order_ids = [order.order_id for order, _, _ in calls]
        locked = {order.id: order for order in session.scalars(_LOCK_ORDERS, {"order_ids": order_ids})}
        answers.store_all(session, [(order.order_id, called.heard) for order, _, called in calls])
        with session.no_autoflush:  # the orders' changes flushed together at the commit, not one by one
            return placement.record_calls(
                session,
                [(locked[order.order_id], exchange, called, order.outcome) for order, exchange, called in calls],
            )
