"""Fit an order onto a symbol's grid (tick, step) and check the venue's minimums before it is sent.

Rounding always favours the trader: quantities round down (never more than asked), a buy limit
rounds down and a sell limit rounds up (never a worse price than asked). Trigger prices round to
the nearest tick.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import TypedDict

from core.exchanges.errors import InvalidOrder
from core.exchanges.models import OrderRequest, SymbolRules


def round_to_step(value: Decimal, step: Decimal, rounding: str = ROUND_FLOOR) -> Decimal:
    """Snap `value` onto a multiple of `step` (serialise with decimal_str, never str, before sending)."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=rounding) * step


def decimal_str(value: Decimal) -> str:
    """Plain positional text for a venue: no exponent, no trailing zeros (1E+1 -> "10", 0.50 -> "0.5")."""
    return format(value.normalize(), "f")


def _limit_rounding(side: str) -> str:
    return ROUND_FLOOR if side == "buy" else ROUND_CEILING


class _Rounded(TypedDict, total=False):
    """The amounts of an order put on the venue's grid."""

    quantity: Decimal
    price: Decimal
    stop_price: Decimal


def round_and_validate(
    order: OrderRequest, rules: SymbolRules, *, reference_price: Decimal | None = None
) -> OrderRequest:
    """Return the order snapped to the symbol's grid, or raise InvalidOrder saying what is wrong.

    `reference_price` (e.g. last trade) lets market orders be checked against the minimum notional.
    """
    if order.symbol != rules.symbol:
        raise InvalidOrder(f"order is for {order.symbol} but the rules are for {rules.symbol}")
    if not rules.trading:
        raise InvalidOrder(f"{rules.symbol} is not trading on the venue right now")
    if order.type == "trailing_stop" and order.type not in rules.order_types:
        raise InvalidOrder(f"{rules.symbol} has no trailing stop at this venue (a native trailing stop is needed)")
    if rules.order_types and order.type not in rules.order_types:
        raise InvalidOrder(
            f"{rules.symbol} does not accept {order.type} orders (accepted: {', '.join(sorted(rules.order_types))})"
        )

    changes: _Rounded = {}
    if order.quantity is not None:
        qty = round_to_step(order.quantity, rules.step_size)
        if qty <= 0:
            raise InvalidOrder(
                f"quantity {decimal_str(order.quantity)} rounds to 0 at the {rules.symbol} "
                f"step {decimal_str(rules.step_size)}"
            )
        if qty < rules.min_qty:
            raise InvalidOrder(
                f"quantity {decimal_str(qty)} is below the {rules.symbol} minimum {decimal_str(rules.min_qty)}"
            )
        if rules.max_qty is not None and rules.max_qty > 0 and qty > rules.max_qty:
            raise InvalidOrder(
                f"quantity {decimal_str(qty)} is above the {rules.symbol} maximum {decimal_str(rules.max_qty)}"
            )
        changes["quantity"] = qty
    if order.price is not None:
        price = round_to_step(order.price, rules.tick_size, _limit_rounding(order.side))
        if price <= 0:
            raise InvalidOrder(
                f"price {decimal_str(order.price)} rounds to 0 at the {rules.symbol} tick "
                f"{decimal_str(rules.tick_size)}"
            )
        changes["price"] = price
    if order.stop_price is not None:
        stop = round_to_step(order.stop_price, rules.tick_size, ROUND_HALF_EVEN)
        if stop <= 0:
            raise InvalidOrder(
                f"stop price {decimal_str(order.stop_price)} rounds to 0 at the {rules.symbol} tick "
                f"{decimal_str(rules.tick_size)}"
            )
        changes["stop_price"] = stop

    notional = _notional(
        changes.get("quantity"),
        order.quote_quantity,
        changes.get("price") or changes.get("stop_price") or reference_price,
    )
    if notional is not None and notional < rules.min_notional:
        raise InvalidOrder(
            f"order value {decimal_str(notional)} {rules.quote} is below the "
            f"{rules.symbol} minimum notional {decimal_str(rules.min_notional)} {rules.quote}"
        )
    return replace(order, **changes)


def _notional(qty: Decimal | None, quote_qty: Decimal | None, price: Decimal | None) -> Decimal | None:
    if quote_qty is not None:
        return quote_qty
    if qty is not None and price is not None:
        return qty * price
    return None
