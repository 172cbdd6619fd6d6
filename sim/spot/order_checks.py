"""Checks an `OrderRequest` against its instrument's filters, and tells when a stop price is reached."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from sim.spot.orders import (
    LIMIT_PRICED,
    STOP_TYPES,
    TRAILING_DELTA_RANGE,
    ZERO,
    EngineError,
    Instrument,
    OrderRequest,
    OrderType,
    Side,
)


def validate(instrument: Instrument, request: OrderRequest, last_price: Callable[[str], Decimal]) -> None:
    qty, price = request.quantity, request.price
    if request.type == OrderType.MARKET:
        if (qty is None) == (request.quote_quantity is None):
            raise EngineError(EngineError.INVALID, "Send either quantity or quote quantity.")
    elif qty is None:
        raise EngineError(EngineError.INVALID, "Missing quantity.")
    if request.type in LIMIT_PRICED and price is None:
        raise EngineError(EngineError.INVALID, "Missing price.")
    if request.type in STOP_TYPES and request.stop_price is None and request.trailing_delta is None:
        raise EngineError(EngineError.INVALID, "Missing stop price.")
    if (
        request.trailing_delta is not None
        and not TRAILING_DELTA_RANGE[0] <= request.trailing_delta <= TRAILING_DELTA_RANGE[1]
    ):
        raise EngineError(EngineError.FILTER, "Filter failure: TRAILING_DELTA", detail="TRAILING_DELTA")
    if (
        request.type in (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
        and request.time_in_force is None
    ):
        raise EngineError(EngineError.INVALID, "Missing time in force.")
    for value in (price, request.stop_price):
        if value is not None and not on_grid(value, instrument.min_price, instrument.max_price, instrument.tick_size):
            raise EngineError(EngineError.FILTER, "Filter failure: PRICE_FILTER", detail="PRICE_FILTER")
    if qty is not None and not on_grid(qty, instrument.min_qty, instrument.max_qty, instrument.step_size):
        raise EngineError(EngineError.FILTER, "Filter failure: LOT_SIZE", detail="LOT_SIZE")
    reference = price or request.stop_price or last_price(instrument.symbol)
    notional = request.quote_quantity if qty is None else qty * reference
    if notional is None or notional < instrument.min_notional:
        raise EngineError(EngineError.FILTER, "Filter failure: NOTIONAL", detail="NOTIONAL")


def on_grid(value: Decimal, low: Decimal, high: Decimal, step: Decimal) -> bool:
    return low <= value <= high and (value - low) % step == ZERO


def stop_triggered(order_type: OrderType, side: Side, stop_price: Decimal | None, price: Decimal) -> bool:
    """Stop-loss sells fire at or below the stop, take-profit sells at or above; buys mirror."""
    if stop_price is None:
        return False
    falling = (order_type in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT)) == (side == Side.SELL)
    return price <= stop_price if falling else price >= stop_price
