"""One placement request to a venue and what came of it (the answer, or the error that stands for
none), and the query by client order id that finds an order an earlier attempt may have placed.
Recording the result is core.orders.placement's (`record_call`)."""

from __future__ import annotations

from dataclasses import dataclass

from core.exchanges.answers import HeardAnswer, listen
from core.exchanges.errors import ExchangeError, OrderNotFound, OrderWindowPassed, RateLimited
from core.exchanges.models import OcoRequest, OcoResult, OrderRequest, VenueOrder, oco_leg_ids
from core.exchanges.ratelimit import RequestClass, priority
from core.exchanges.spot.base import Exchange
from core.models import Order


@dataclass
class VenueCall:
    """One placement request's result: the venue's answer or why there is none, and what was heard."""

    answer: VenueOrder | OcoResult | None
    failure: ExchangeError | None
    heard: list[HeardAnswer]


def call_venue(exchange: Exchange, request: OrderRequest | OcoRequest, deadline: float | None) -> VenueCall:
    """Send the request. The order goes first in our limiter and waits its turn for the venue's budget
    until `deadline`; if that passes first, nothing was sent (OrderWindowPassed)."""
    answer: VenueOrder | OcoResult | None = None
    failure: ExchangeError | None = None
    with listen("place") as heard:
        try:
            with priority(RequestClass.ORDER, deadline=deadline):
                answer = (
                    exchange.place_oco(request) if isinstance(request, OcoRequest) else exchange.place_order(request)
                )
        except OrderWindowPassed as err:
            failure = err  # our limiter sent nothing, not even a resend: nothing can have landed
        except RateLimited as err:
            # The venue did not execute this request, but an earlier attempt may have landed: ask once.
            failure = err
            try:
                answer = lookup(exchange, request)
            except OrderNotFound:
                pass
            except ExchangeError as lookup_err:
                failure = lookup_err
        except ExchangeError as err:
            failure = err
    return VenueCall(answer, failure, heard)


def lookup(exchange: Exchange, request: OrderRequest | OcoRequest | Order) -> VenueOrder | OcoResult:
    if isinstance(request, OcoRequest) or (isinstance(request, Order) and request.type == "oco"):
        symbol, client_id = request.symbol, request.client_order_id or ""
        legs = []
        for leg_id in oco_leg_ids(client_id):
            try:
                legs.append(exchange.get_order(symbol, client_order_id=leg_id))
            except OrderNotFound:
                continue  # an emulated OCO whose second leg was lost: the one found still counts
        if not legs:
            raise OrderNotFound(f"neither leg of OCO {client_id} is at the venue", venue=exchange.venue)
        return OcoResult(
            client_order_id=client_id, symbol=symbol, orders=tuple(legs), emulated=not exchange.has_native_oco
        )
    if isinstance(request, Order) and not request.client_order_id:  # an external order: the venue's id only
        return exchange.get_order(request.symbol, venue_order_id=request.venue_order_id)
    return exchange.get_order(request.symbol, client_order_id=request.client_order_id)
