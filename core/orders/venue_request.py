"""The venue request for one order row: built from the row, fitted to the symbol's rules, and the
rounded amounts written back to the row (core.orders.placement sends it)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from core.exchanges.errors import InvalidOrder
from core.exchanges.models import OcoRequest, OrderRequest, OrderType, Side, TimeInForce
from core.exchanges.rules import round_and_validate
from core.exchanges.spot.base import Exchange
from core.models import Order


def request_of(order: Order) -> OrderRequest | OcoRequest:
    # The casts only name the literal types: both request classes check side, type and time in force.
    if order.type == "oco":
        return oco_request_of(order)
    return OrderRequest(
        client_order_id=order.client_order_id or "",
        symbol=order.symbol,
        side=cast(Side, order.side),
        type=cast(OrderType, order.type),
        quantity=order.quantity,
        quote_quantity=order.quote_quantity,
        price=order.price,
        stop_price=order.stop_price,
        time_in_force=cast(TimeInForce, order.time_in_force),
        trail_pct=order.trail_pct,
    )


def oco_request_of(order: Order) -> OcoRequest:
    if order.quantity is None or order.price is None or order.stop_price is None:
        raise InvalidOrder(f"OCO order {order.id} lacks its quantity, limit price or stop price")
    return OcoRequest(
        client_order_id=order.client_order_id or "",
        symbol=order.symbol,
        side=cast(Side, order.side),
        quantity=order.quantity,
        limit_price=order.price,
        stop_price=order.stop_price,
    )


def fit_to_rules(exchange: Exchange, request: OrderRequest | OcoRequest) -> OrderRequest | OcoRequest:
    """The request on the symbol's grid, or InvalidOrder; markets are cached per process."""
    rules = exchange.rules(request.symbol)
    if isinstance(request, OcoRequest):
        take_profit = round_and_validate(request.take_profit_leg(), rules)
        stop_loss = round_and_validate(request.stop_loss_leg(), rules)
        quantity, limit_price, stop_price = take_profit.quantity, take_profit.price, stop_loss.stop_price
        if quantity is None or limit_price is None or stop_price is None:  # rounding keeps them: a bug
            raise InvalidOrder(f"rounding the OCO legs of {request.client_order_id} lost a quantity or price")
        return replace(request, quantity=quantity, limit_price=limit_price, stop_price=stop_price)
    return round_and_validate(request, rules)


def store_rounded(order: Order, request: OrderRequest | OcoRequest) -> dict[str, Any]:
    """Our record shows what the venue gets; the trader's raw numbers stay in the event detail."""
    asked = {"quantity": order.quantity, "price": order.price, "stop_price": order.stop_price}
    if order.type == "trailing_stop" and isinstance(request, OrderRequest) and request.type == "market":
        # An emulated trailing stop, triggered: the row keeps its activation price; only the size is sent.
        order.quantity = request.quantity
        return {"quantity": str(asked["quantity"])} if asked["quantity"] != order.quantity else {}
    if isinstance(request, OcoRequest):
        order.quantity, order.price, order.stop_price = request.quantity, request.limit_price, request.stop_price
    else:
        order.quantity, order.price, order.stop_price = request.quantity, request.price, request.stop_price
    now = {"quantity": order.quantity, "price": order.price, "stop_price": order.stop_price}
    return {k: str(v) for k, v in asked.items() if v is not None and v != now[k]}
