"""Trailing stops in the engine, as Binance runs them (trailing-stop-faq.md): a STOP_LOSS / TAKE_PROFIT
(or their _LIMIT forms) with `trailingDelta` in basis points.

Without a stop price the order trails from its submission; with one it activates once the market reaches
that price (the order type's usual trigger condition), then trails. A sell tracks the highest trade since
it activated and triggers once a trade is `delta` below it; a buy tracks the lowest and triggers `delta`
above it."""

from __future__ import annotations

from decimal import Decimal

from sim.spot.order_checks import stop_triggered
from sim.spot.orders import TRAILING_DELTA_RANGE, ZERO, Order, Side

BPS = Decimal(10_000)
TRAILING_DELTA_FILTER = {
    "minTrailingAboveDelta": TRAILING_DELTA_RANGE[0],
    "maxTrailingAboveDelta": TRAILING_DELTA_RANGE[1],
    "minTrailingBelowDelta": TRAILING_DELTA_RANGE[0],
    "maxTrailingBelowDelta": TRAILING_DELTA_RANGE[1],
}


def arm(order: Order, last: Decimal, now: int) -> None:
    """At placement: an order without an activation price trails from the last trade."""
    if order.stop_price == ZERO:
        _activate(order, last, now)


def trail(order: Order, price: Decimal, now: int) -> bool:
    """One market trade seen by a trailing order; True when it triggers."""
    if not order.trail_active:
        if stop_triggered(order.type, order.side, order.stop_price, price):
            _activate(order, price, now)
        return False
    if order.side == Side.SELL:
        order.trail_extreme = max(order.trail_extreme, price)
    else:
        order.trail_extreme = min(order.trail_extreme, price)
    return _crossed(order, price)


def trigger_level(order: Order) -> Decimal:
    """The price at which the order triggers now (zero while it waits for its activation price)."""
    if not order.trail_active:
        return ZERO
    offset = order.trail_extreme * Decimal(order.trailing_delta) / BPS
    return order.trail_extreme - offset if order.side == Side.SELL else order.trail_extreme + offset


def _crossed(order: Order, price: Decimal) -> bool:
    level = trigger_level(order)
    return price <= level if order.side == Side.SELL else price >= level


def _activate(order: Order, price: Decimal, now: int) -> None:
    order.trail_active, order.trail_extreme, order.trailing_time = True, price, now
