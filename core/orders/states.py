"""The one order state machine. Every change of `Order.state` goes through `transition`."""

from __future__ import annotations

from enum import StrEnum


class OrderState(StrEnum):
    NEW = "new"  # recorded in Postgres, nothing sent yet
    SENT = "sent"  # handed to the venue, no answer yet
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # the venue did not answer: only a query by client order id may resolve it


FINAL_STATES = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED})
_LIVE = {OrderState.OPEN, OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELLED, OrderState.EXPIRED}

ALLOWED: dict[OrderState, frozenset[OrderState]] = {
    OrderState.NEW: frozenset({OrderState.SENT, OrderState.REJECTED, OrderState.CANCELLED}),
    OrderState.SENT: frozenset(_LIVE | {OrderState.REJECTED, OrderState.UNKNOWN}),
    # An unknown order is re-sent (same client order id) only once a query proved the venue never had it.
    OrderState.UNKNOWN: frozenset(_LIVE | {OrderState.REJECTED, OrderState.SENT}),
    OrderState.OPEN: frozenset(
        {OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELLED, OrderState.EXPIRED}
    ),
    OrderState.PARTIALLY_FILLED: frozenset(
        {OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELLED, OrderState.EXPIRED}
    ),
}


class IllegalTransition(Exception):
    pass


def can_transition(current: OrderState | str, target: OrderState | str) -> bool:
    return OrderState(target) in ALLOWED.get(OrderState(current), frozenset())


def check_transition(current: OrderState | str, target: OrderState | str) -> None:
    if not can_transition(current, target):
        raise IllegalTransition(f"order cannot go from {OrderState(current)} to {OrderState(target)}")
