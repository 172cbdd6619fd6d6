"""Balance locks for open orders: what an order must lock, and moving amounts between free and locked."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from sim.spot.orders import LIMIT_PRICED, ZERO, Balance, Instrument, Order, OrderRequest, OrderType, Side

BookSource = Callable[[str], tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]]


def draft(request: OrderRequest) -> Order:
    """An unplaced order for the request, enough to size its lock."""
    return Order(
        0,
        "",
        request.symbol,
        request.side,
        request.type,
        "",
        request.quantity or ZERO,
        request.quote_quantity or ZERO,
        request.price or ZERO,
        request.stop_price or ZERO,
        request.time_in_force,
        0,
        0,
    )


def lock_need(instrument: Instrument, order: Order, book: BookSource) -> tuple[str, Decimal]:
    if order.side == Side.SELL:
        return instrument.base, order.quantity
    if order.type == OrderType.MARKET and order.quote_quantity:
        return instrument.quote, order.quote_quantity
    if order.type == OrderType.MARKET:
        return instrument.quote, market_buy_cost(book, order.symbol, order.quantity)
    reference = order.price if order.type in LIMIT_PRICED else order.stop_price
    if reference == ZERO:  # a trailing stop without an activation price: it buys at market when it triggers
        return instrument.quote, market_buy_cost(book, order.symbol, order.quantity)
    return instrument.quote, order.quantity * reference


def market_buy_cost(book: BookSource, symbol: str, quantity: Decimal) -> Decimal:
    _, asks = book(symbol)
    cost, left = ZERO, quantity
    for price, size in asks:
        take = min(size, left)
        cost += take * price
        left -= take
        if left <= ZERO:
            break
    return cost + left * (asks[-1][0] if asks else ZERO)


def move(balance: Balance, amount: Decimal, *, to_locked: bool) -> None:
    if to_locked:
        balance.free -= amount
        balance.locked += amount
    else:
        balance.locked -= amount
        balance.free += amount
