"""Bitget spot wire format: request signing, error codes, and the JSON answers turned into our models.

Signing (common/signature): ACCESS-SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath
+ "?" + queryString (only when non-empty) + body)). The query string is built once and used both in
the URL and in the prehash; the body is the exact JSON text sent.

A plan (trigger) order does not say whether it is a stop-loss or a take-profit: it parses as
trigger_market / trigger_limit (see bitget.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal
from typing import Any

from core.exchanges.errors import (
    AuthError,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    RateLimited,
    Unavailable,
)
from core.exchanges.models import (
    ORDER_TYPES,
    Balance,
    Kline,
    OrderRequest,
    OrderStatus,
    SymbolRules,
    VenueOrder,
    VenueTrade,
)
from core.exchanges.rules import decimal_str
from core.exchanges.spot.base import require, to_decimal

VENUE = "bitget"

STATUS_IN = {
    "init": "open",
    "new": "open",
    "live": "open",
    "partially_filled": "partially_filled",
    "filled": "filled",
    "full_fill": "filled",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}
# Plan order states: current list "live"/"not_trigger" (doc example) and "executing"; history "executed",
# "fail_execute", "cancelled"/"cancel" (doc example). "executed" is resolved through the sub-order.
PLAN_STATUS_IN: dict[str, OrderStatus | None] = {
    "live": "open",
    "not_trigger": "open",
    "executing": "open",
    "executed": None,
    "fail_execute": "rejected",
    "fail_trigger": "rejected",
    "cancelled": "cancelled",
    "cancel": "cancelled",
}
INTERVALS = {
    "1m": "1min",
    "3m": "3min",
    "5m": "5min",
    "15m": "15min",
    "30m": "30min",
    "1h": "1h",
    "4h": "4h",
    "6h": "6h",
    "12h": "12h",
    "1d": "1day",
    "3d": "3day",
    "1w": "1week",
    "1M": "1M",
}

AUTH_CODES = {
    "40001",
    "40002",
    "40003",
    "40005",
    "40006",
    "40008",
    "40009",
    "40011",
    "40012",
    "40014",
    "40037",
    "40038",
}
FUNDS_CODES = {"43012", "40762", "43004"}
NOT_FOUND_CODES = {"43001", "40109", "43025"}
RATE_CODES = {"429", "40010"}
BUSY_CODES = {"40015", "40725", "45001"}


def prehash(timestamp: str, method: str, request_path: str, query: str, body: str) -> str:
    return f"{timestamp}{method.upper()}{request_path}{'?' + query if query else ''}{body}"


def sign(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def error_for(code: str | None, message: str, *, status: int, venue: str = VENUE) -> ExchangeError:
    lowered = message.lower()
    if code in AUTH_CODES or status == 401:
        cls: type[ExchangeError] = AuthError
    elif code in RATE_CODES or status == 429:
        cls = RateLimited
    elif code in BUSY_CODES or status >= 500:
        cls = Unavailable
    elif code in FUNDS_CODES or "insufficient" in lowered or "exceeds the balance" in lowered:
        cls = InsufficientFunds
    elif code in NOT_FOUND_CODES or "does not exist" in lowered and "order" in lowered:
        cls = OrderNotFound
    elif code and (code.startswith("40") or code.startswith("43") or code.startswith("45")):
        cls = InvalidOrder
    else:
        cls = ExchangeError
    return cls(message or f"HTTP {status}", venue=venue, code=code)


def is_plan(raw: Any) -> bool:
    """Whether a VenueOrder's raw payload is a plan order (plan orders carry a trigger, spot orders do not)."""
    return isinstance(raw, dict) and "triggerPrice" in raw


def param(value: Any) -> str:
    """A request parameter as Bitget takes it: decimals in plain notation."""
    return decimal_str(value) if isinstance(value, Decimal) else str(value)


def parse_rules(raw: dict[str, Any]) -> SymbolRules:
    symbol = require(raw, "symbol", VENUE)

    def number(name: str) -> Decimal:
        return to_decimal(raw.get(name, "0"), f"{symbol} {name}", VENUE)

    return SymbolRules(
        symbol=symbol,
        base=raw.get("baseCoin", ""),
        quote=raw.get("quoteCoin", ""),
        tick_size=Decimal(1).scaleb(-int(number("pricePrecision"))),
        step_size=Decimal(1).scaleb(-int(number("quantityPrecision"))),
        min_qty=number("minTradeAmount"),
        min_notional=number("minTradeUSDT"),
        max_qty=number("maxTradeAmount") or None,
        order_types=ORDER_TYPES - {"trailing_stop"},  # spot plan orders trigger at a fixed price only
        oco_allowed=False,
        trading=raw.get("status") == "online",
    )


def parse_candles(rows: list[Any]) -> list[Kline]:
    """Candle rows [openTime, open, high, low, close, baseVolume, ...], oldest first."""
    klines = []
    for row in rows:
        if not isinstance(row, list) or len(row) < 6:
            raise MalformedResponse(f"unexpected candle row {str(row)[:120]}", venue=VENUE)
        o, h, low, c, v = (to_decimal(x, "candle", VENUE) for x in row[1:6])
        klines.append(Kline(open_time_ms=int(row[0]), open=o, high=h, low=low, close=c, volume=v))
    return sorted(klines, key=lambda k: k.open_time_ms)


def parse_balances(assets: list[Any]) -> dict[str, Balance]:
    result: dict[str, Balance] = {}
    for raw in assets:
        coin = require(raw, "coin", VENUE)
        held = sum((to_decimal(raw.get(k, "0"), f"{coin} {k}", VENUE) for k in ("frozen", "locked")), Decimal(0))
        free = to_decimal(raw.get("available"), f"{coin} available", VENUE)
        result[coin] = Balance(asset=coin, free=free, locked=held)
    return result


def acknowledged(order: OrderRequest, data: Any) -> VenueOrder:
    """The answer to place-order / place-plan-order: ids only, so the rest comes from the request."""
    return VenueOrder(
        venue_order_id=str(require(data, "orderId", VENUE)),
        client_order_id=data.get("clientOid") or order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        status="open",
        quantity=order.quantity,
        filled_qty=Decimal(0),
        avg_price=None,
        price=order.price,
        raw=data,
    )


def plan_view(raw: dict[str, Any], status: OrderStatus, filled: Decimal, avg_price: Decimal | None) -> VenueOrder:
    """A plan order with the status and fills given (its own before it fires, its sub-order's after)."""
    limit_price = to_decimal(raw.get("executePrice") or "0", "executePrice", VENUE)
    size = to_decimal(raw.get("size") or "0", "size", VENUE)
    is_limit = raw.get("orderType") == "limit"
    return VenueOrder(
        venue_order_id=str(require(raw, "orderId", VENUE)),
        client_order_id=raw.get("clientOid", ""),
        symbol=raw.get("symbol", ""),
        side=raw.get("side", ""),
        # Bitget does not say whether a trigger is a stop or a take-profit (see bitget.py's module doc).
        type="trigger_limit" if is_limit else "trigger_market",
        status=status,
        quantity=size or None if raw.get("planType", "amount") == "amount" else None,
        filled_qty=filled,
        avg_price=avg_price,
        price=limit_price if is_limit and limit_price else None,
        raw=raw,
    )


def parse_fill(raw: dict[str, Any]) -> VenueTrade:
    fee = raw.get("feeDetail") or {}
    return VenueTrade(
        trade_id=str(require(raw, "tradeId", VENUE)),
        order_id=str(require(raw, "orderId", VENUE)),
        symbol=raw.get("symbol", ""),
        side=raw.get("side"),
        price=to_decimal(require(raw, "priceAvg", VENUE), "priceAvg", VENUE),
        qty=to_decimal(require(raw, "size", VENUE), "size", VENUE),
        fee=abs(to_decimal(fee.get("totalFee", "0"), "totalFee", VENUE)),
        fee_asset=fee.get("feeCoin", ""),
        time_ms=int(require(raw, "cTime", VENUE)),
    )


def parse_order(raw: dict[str, Any]) -> VenueOrder:
    """A spot order (orderInfo, unfilled-orders). A market buy is sized in quote: its quantity is unknown."""
    status = STATUS_IN.get(str(require(raw, "status", VENUE)))
    if status is None:
        raise MalformedResponse(f"unknown order status {raw.get('status')!r}", venue=VENUE)
    filled = to_decimal(raw.get("baseVolume") or "0", "baseVolume", VENUE)
    avg = to_decimal(raw.get("priceAvg") or "0", "priceAvg", VENUE)
    price = to_decimal(raw.get("price") or "0", "price", VENUE)
    size = to_decimal(raw.get("size") or "0", "size", VENUE)
    is_quote_sized = raw.get("orderType") == "market" and raw.get("side") == "buy"
    return VenueOrder(
        venue_order_id=str(require(raw, "orderId", VENUE)),
        client_order_id=raw.get("clientOid", ""),
        symbol=raw.get("symbol", ""),
        side=raw.get("side", ""),
        type=raw.get("orderType", ""),
        status=status,  # type: ignore[arg-type]  # the venue's text: not narrowed to the Literal
        quantity=None if is_quote_sized else size or None,
        filled_qty=filled,
        avg_price=avg if filled > 0 and avg > 0 else None,
        price=price or None,
        raw=raw,
    )
