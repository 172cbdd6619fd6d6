"""Reads Binance new-order and OCO parameters into the engine's `OrderRequest` and `OcoLeg`, raising venue errors."""

from __future__ import annotations

from sim.spot.binance_wire import CLIENT_ID_PATTERN, DEFAULT_RESP_TYPE, BinanceError, Params, mandatory, not_required
from sim.spot.orders import STOP_TYPES, OcoLeg, OrderRequest, OrderType, Side, TimeInForce
from sim.spot.state import SimState


def parse_order_request(params: Params, state: SimState) -> tuple[OrderRequest, str]:
    """The engine request and response type of a new-order call; raises the venue's errors."""
    symbol = params.symbol(state)
    side = params.text("side", required=True)
    if side not in Side.__members__:
        raise BinanceError(-1117, "Invalid side.")
    type_ = params.text("type", required=True)
    if type_ not in OrderType.__members__:
        raise BinanceError(-1116, "Invalid orderType.")
    order_type = OrderType(type_)
    tif = params.text("timeInForce")
    if tif is not None and tif not in TimeInForce.__members__:
        raise BinanceError(-1115, "Invalid timeInForce.")
    needs_tif = order_type in (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
    if needs_tif and tif is None:
        raise mandatory("timeInForce")
    if tif is not None and not needs_tif:
        raise not_required("timeInForce")
    quantity, quote_qty = params.decimal("quantity"), params.decimal("quoteOrderQty")
    if order_type == OrderType.MARKET:
        if quantity is None and quote_qty is None:
            raise mandatory("quantity")
        if quantity is not None and quote_qty is not None:
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
    else:
        if quote_qty is not None:
            raise not_required("quoteOrderQty")
        if quantity is None:
            raise mandatory("quantity")
    price = params.decimal("price")
    priced = order_type in (
        OrderType.LIMIT,
        OrderType.LIMIT_MAKER,
        OrderType.STOP_LOSS_LIMIT,
        OrderType.TAKE_PROFIT_LIMIT,
    )
    if priced and price is None:
        raise mandatory("price")
    if price is not None and not priced:
        raise not_required("price")
    stop_price = params.decimal("stopPrice")
    trailing_delta = params.integer("trailingDelta")
    if trailing_delta is not None and order_type not in STOP_TYPES:
        raise not_required("trailingDelta")
    if trailing_delta is not None and not state.market.symbols[symbol].trailing_stop:
        raise BinanceError(-1013, "This order type is not supported for this symbol.")
    if order_type in STOP_TYPES and stop_price is None and trailing_delta is None:
        raise mandatory("stopPrice")
    if stop_price is not None and order_type not in STOP_TYPES:
        raise not_required("stopPrice")
    client_id = checked_client_id(params, "newClientOrderId")
    resp_type = params.text("newOrderRespType") or DEFAULT_RESP_TYPE.get(order_type, "ACK")
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise BinanceError(
            -1100, "Illegal characters found in parameter 'newOrderRespType'; legal range is 'ACK, RESULT, FULL'."
        )
    request = OrderRequest(
        symbol,
        Side(side),
        order_type,
        quantity=quantity,
        quote_quantity=quote_qty,
        price=price,
        stop_price=stop_price,
        time_in_force=TimeInForce(tif) if tif else None,
        client_order_id=client_id,
        trailing_delta=trailing_delta,
    )
    return request, resp_type


def checked_client_id(params: Params, name: str) -> str | None:
    client_id = params.text(name)
    if client_id is not None and not CLIENT_ID_PATTERN.match(client_id):
        raise BinanceError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[a-zA-Z0-9-_]{{1,36}}$'."
        )
    return client_id


def oco_leg(params: Params, position: str) -> OcoLeg:
    type_ = params.text(f"{position}Type", required=True)
    allowed = ("LIMIT_MAKER", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
    if type_ not in allowed:
        raise BinanceError(-1116, "Invalid orderType.")
    tif = params.text(f"{position}TimeInForce")
    if tif is not None and tif not in TimeInForce.__members__:
        raise BinanceError(-1115, "Invalid timeInForce.")
    order_type = OrderType(type_)
    price = params.decimal(f"{position}Price")
    stop_price = params.decimal(f"{position}StopPrice")
    if order_type in (OrderType.LIMIT_MAKER, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT) and price is None:
        raise mandatory(f"{position}Price")
    if order_type in STOP_TYPES and stop_price is None:
        raise mandatory(f"{position}StopPrice")
    if order_type in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT) and tif is None:
        raise mandatory(f"{position}TimeInForce")
    return OcoLeg(
        order_type,
        price=price,
        stop_price=stop_price,
        time_in_force=TimeInForce(tif) if tif else None,
        client_order_id=checked_client_id(params, f"{position}ClientOrderId"),
    )
