"""Bitget spot (REST v2).

Signing (common/signature): ACCESS-SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath
+ "?" + queryString (only when non-empty) + body)). The query string is built once and used both in
the URL and in the prehash; the body is the exact JSON text sent.

Quirks: a market buy is sized in quote currency (`size` = USDT to spend). Only market and limit
orders go through place-order; stop-loss and take-profit orders are plan (trigger) orders with their
own endpoints (spot/plan/Place-Plan-Order, Cancel-Plan-Order, Get-Current-Plan-Order,
Get-History-Plan-Order, Get-Plan-Sub-Order). A plan order has no direction of its own: it fires when
the last price reaches `triggerPrice`, so a stop-loss and a take-profit are the same request and only
our order type tells them apart. When it fires, Bitget places a separate spot order (the "sub-order")
that carries the fills. There is no OCO on spot: the base class emulates it with two linked orders.

Plan orders cannot be queried by client id: get_order looks in orderInfo first, then scans the
current and the last 90 days of plan orders for the client id (or plan order id).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

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
    TRIGGERED_TYPES,
    Balance,
    Kline,
    OrderRequest,
    OrderStatus,
    SymbolRules,
    VenueOrder,
    VenueTrade,
)
from core.exchanges.rules import decimal_str
from core.exchanges.spot.base import Exchange, require, to_decimal

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
PLAN_HISTORY_DAYS = 89  # history-plan-order: startTime..endTime must not exceed 90 days
PLAN_PAGE_SIZE = 100  # the documented maximum `limit`
PLAN_MAX_PAGES = 5
DAY_MS = 86_400_000
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


def error_for(code: str | None, message: str, *, status: int, venue: str = "bitget") -> ExchangeError:
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


def _param(value: Any) -> str:
    return decimal_str(value) if isinstance(value, Decimal) else str(value)


class BitgetSpot(Exchange):
    venue = "bitget"
    default_base_url = "https://api.bitget.com"
    venue_limits = ("20/second",)  # public market endpoints: 20/s per IP
    key_limits = ("10/second",)  # place-order: 10/s per UID, the tightest trade endpoint
    key_limits_count_every_request = False

    def _attempt(self, method: str, path: str, params: dict[str, Any], signed: bool) -> Any:
        clean = {k: _param(v) for k, v in params.items() if v is not None}
        query = urlencode(clean) if method == "GET" else ""
        body = json.dumps(clean, separators=(",", ":")) if method == "POST" else ""
        headers = {"Content-Type": "application/json", "locale": "en-US"}
        if signed:
            timestamp = str(self.now_ms())
            headers |= {
                "ACCESS-KEY": self._api_key,
                "ACCESS-TIMESTAMP": timestamp,
                "ACCESS-PASSPHRASE": self._passphrase or "",
                "ACCESS-SIGN": sign(self._api_secret, prehash(timestamp, method, path, query, body)),
            }
        response = self._http(method, path, query=query, body=body or None, headers=headers)
        payload = self._json(response)
        if not isinstance(payload, dict):
            raise MalformedResponse(f"expected a JSON object, got {str(payload)[:120]}", venue=self.venue)
        code = str(payload.get("code", ""))
        if code != "00000" or response.status_code >= 400:
            raise error_for(code or None, str(payload.get("msg", "")), status=response.status_code, venue=self.venue)
        return require(payload, "data", self.venue)

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        signed: bool = False,
        idempotent: bool = True,
    ) -> Any:
        return self._call(lambda: self._attempt(method, path, dict(params or {}), signed), idempotent=idempotent)

    def _list(self, payload: Any, what: str) -> list[Any]:
        if not isinstance(payload, list):
            raise MalformedResponse(f"expected a list of {what}, got {str(payload)[:120]}", venue=self.venue)
        return payload

    # ---- market data --------------------------------------------------------------------------

    def server_time_ms(self) -> int:
        data = self._request("GET", "/api/v2/public/time")
        return int(require(data, "serverTime", self.venue))

    def load_markets(self) -> dict[str, SymbolRules]:
        data = self._list(self._request("GET", "/api/v2/spot/public/symbols"), "symbols")
        return {rules.symbol: rules for rules in map(self._parse_rules, data)}

    def _parse_rules(self, raw: dict[str, Any]) -> SymbolRules:
        symbol = require(raw, "symbol", self.venue)

        def number(name: str) -> Decimal:
            return to_decimal(raw.get(name, "0"), f"{symbol} {name}", self.venue)

        return SymbolRules(
            symbol=symbol,
            base=raw.get("baseCoin", ""),
            quote=raw.get("quoteCoin", ""),
            tick_size=Decimal(1).scaleb(-int(number("pricePrecision"))),
            step_size=Decimal(1).scaleb(-int(number("quantityPrecision"))),
            min_qty=number("minTradeAmount"),
            min_notional=number("minTradeUSDT"),
            max_qty=number("maxTradeAmount") or None,
            order_types=ORDER_TYPES,
            oco_allowed=False,
            trading=raw.get("status") == "online",
        )

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int | None = None,
    ) -> list[Kline]:
        if interval not in INTERVALS:
            raise ValueError(f"unsupported Bitget interval {interval!r}")
        rows = self._list(
            self._request(
                "GET",
                "/api/v2/spot/market/candles",
                {
                    "symbol": symbol,
                    "granularity": INTERVALS[interval],
                    "startTime": start_ms,
                    "endTime": end_ms,
                    "limit": limit,
                },
            ),
            "candles",
        )
        klines = []
        for row in rows:
            if not isinstance(row, list) or len(row) < 6:
                raise MalformedResponse(f"unexpected candle row {str(row)[:120]}", venue=self.venue)
            o, h, low, c, v = (to_decimal(x, "candle", self.venue) for x in row[1:6])
            klines.append(Kline(open_time_ms=int(row[0]), open=o, high=h, low=low, close=c, volume=v))
        return sorted(klines, key=lambda k: k.open_time_ms)

    # ---- account and orders -------------------------------------------------------------------

    def balances(self) -> dict[str, Balance]:
        data = self._list(self._request("GET", "/api/v2/spot/account/assets", signed=True), "assets")
        result = {}
        for raw in data:
            coin = require(raw, "coin", self.venue)
            held = sum(
                (to_decimal(raw.get(k, "0"), f"{coin} {k}", self.venue) for k in ("frozen", "locked")), Decimal(0)
            )
            result[coin] = Balance(
                asset=coin, free=to_decimal(raw.get("available"), f"{coin} available", self.venue), locked=held
            )
        return result

    def _send_order(self, order: OrderRequest) -> VenueOrder:
        if order.type in TRIGGERED_TYPES:
            return self._send_plan_order(order)
        if order.type == "market" and order.side == "buy" and order.quote_quantity is None:
            raise InvalidOrder("Bitget sizes market buys in quote currency: give quote_quantity", venue=self.venue)
        if order.quote_quantity is not None and order.side == "sell":
            raise InvalidOrder("Bitget market sells are sized in base currency: give quantity", venue=self.venue)
        size = order.quote_quantity if order.quote_quantity is not None else order.quantity
        params = {
            "symbol": order.symbol,
            "side": order.side,
            "orderType": order.type,
            "force": order.time_in_force.lower(),
            "price": order.price,
            "size": size,
            "clientOid": order.client_order_id,
        }
        data = self._request("POST", "/api/v2/spot/trade/place-order", params, signed=True, idempotent=False)
        return self._acknowledged(order, data)

    def _send_plan_order(self, order: OrderRequest) -> VenueOrder:
        """Stop-loss / take-profit as a plan order, fields in the order of the doc's request example.

        planType=amount sizes the order in base coin for buys and sells alike; triggerType=fill_price
        fires on the last traded price (mark_price is the other documented choice).
        """
        is_limit = order.price is not None
        params = {
            "symbol": order.symbol,
            "side": order.side,
            "triggerPrice": order.stop_price,
            "executePrice": order.price,
            "size": order.quantity,
            "triggerType": "fill_price",
            "orderType": "limit" if is_limit else "market",
            "planType": "amount",
            "clientOid": order.client_order_id,
            "force": order.time_in_force.lower() if is_limit else None,
        }
        data = self._request("POST", "/api/v2/spot/trade/place-plan-order", params, signed=True, idempotent=False)
        return self._acknowledged(order, data)

    def _acknowledged(self, order: OrderRequest, data: Any) -> VenueOrder:
        return VenueOrder(
            venue_order_id=str(require(data, "orderId", self.venue)),
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

    def cancel_order(
        self, symbol: str, *, venue_order_id: str | None = None, client_order_id: str | None = None
    ) -> VenueOrder:
        """Cancel a spot order or a plan order (before it fires: the plan; after: its spot sub-order).

        The order is looked up first because the two kinds have different cancel endpoints. An order
        already final is returned as it is, so a repeated cancel (task retry) is harmless.
        """
        order = self.get_order(symbol, venue_order_id=venue_order_id, client_order_id=client_order_id)
        if order.is_final:
            return order
        if not is_plan(order.raw):
            self._request(
                "POST",
                "/api/v2/spot/trade/cancel-order",
                {"symbol": symbol, "orderId": order.venue_order_id},
                signed=True,
            )
            # The cancel answer carries only ids; the order itself says how much filled before the cancel.
            return self.get_order(symbol, venue_order_id=order.venue_order_id)
        sub_order = order.raw.get("subOrder")
        if sub_order:
            sub_id = str(require(sub_order, "orderId", self.venue))
            self._request("POST", "/api/v2/spot/trade/cancel-order", {"symbol": symbol, "orderId": sub_id}, signed=True)
            return self._merged(order.raw, self._spot_order({"orderId": sub_id}) or sub_order)
        data = self._request(
            "POST", "/api/v2/spot/trade/cancel-plan-order", {"orderId": order.venue_order_id}, signed=True
        )
        if require(data, "result", self.venue) != "success":
            raise ExchangeError(
                f"plan order {order.venue_order_id} not cancelled: {data.get('result')!r}", venue=self.venue
            )
        return replace(order, status="cancelled")  # an untriggered plan order has no fills

    def get_order(
        self, symbol: str, *, venue_order_id: str | None = None, client_order_id: str | None = None
    ) -> VenueOrder:
        raw = self._spot_order(self._order_ref(venue_order_id, client_order_id))
        if raw is not None:
            return self.parse_order(raw)
        plan = self._find_plan_order(symbol, venue_order_id, client_order_id)
        if plan is None:
            raise OrderNotFound(f"no order {venue_order_id or client_order_id} on {symbol}", venue=self.venue)
        return self.parse_plan_order(plan)

    def _spot_order(self, ref: dict[str, str]) -> dict[str, Any] | None:
        """orderInfo for one spot order, None when Bitget does not know it (empty list or 'does not exist')."""
        try:
            data = self._list(self._request("GET", "/api/v2/spot/trade/orderInfo", ref, signed=True), "orders")
        except OrderNotFound:
            return None
        return data[0] if data else None

    @staticmethod
    def _order_ref(venue_order_id: str | None, client_order_id: str | None) -> dict[str, str]:
        if venue_order_id:
            return {"orderId": venue_order_id}
        if client_order_id:
            return {"clientOid": client_order_id}
        raise InvalidOrder("give venue_order_id or client_order_id")

    # ---- plan (trigger) orders ------------------------------------------------------------------

    def _plan_pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Plan orders of one list endpoint, newest first, following idLessThan while nextFlag says so."""
        cursor = None
        for _ in range(PLAN_MAX_PAGES):
            data = self._request("GET", path, {**params, "limit": PLAN_PAGE_SIZE, "idLessThan": cursor}, signed=True)
            yield from self._list(require(data, "orderList", self.venue), "plan orders")
            cursor = data.get("idLessThan")
            if not data.get("nextFlag") or not cursor:
                return

    def _find_plan_order(
        self, symbol: str, venue_order_id: str | None, client_order_id: str | None
    ) -> dict[str, Any] | None:
        def matches(raw: dict[str, Any]) -> bool:
            if venue_order_id:
                return str(raw.get("orderId")) == venue_order_id
            return raw.get("clientOid") == client_order_id

        now = self.now_ms()
        for path, params in (
            ("/api/v2/spot/trade/current-plan-order", {"symbol": symbol}),
            (
                "/api/v2/spot/trade/history-plan-order",
                {"symbol": symbol, "startTime": now - PLAN_HISTORY_DAYS * DAY_MS, "endTime": now},
            ),
        ):
            found = next((raw for raw in self._plan_pages(path, params) if matches(raw)), None)
            if found is not None:
                return found
        return None

    def parse_plan_order(self, raw: dict[str, Any]) -> VenueOrder:
        """A plan order; once it fired ("executed"), status and fills are those of its spot sub-order."""
        state = str(require(raw, "status", self.venue))
        if state not in PLAN_STATUS_IN:
            raise MalformedResponse(f"unknown plan order status {state!r}", venue=self.venue)
        status = PLAN_STATUS_IN[state]
        if status is not None:
            return self._plan_view(raw, status, Decimal(0), None)
        plan_id = str(require(raw, "orderId", self.venue))
        subs = self._list(
            self._request("GET", "/api/v2/spot/trade/plan-sub-order", {"planOrderId": plan_id}, signed=True),
            "plan sub-orders",
        )
        placed = next((sub for sub in subs if sub.get("orderId") and sub.get("status") != "fail"), None)
        if placed is None:
            failed = any(sub.get("status") == "fail" for sub in subs)
            return self._plan_view(raw, "rejected" if failed else "open", Decimal(0), None)
        spot = self._spot_order({"orderId": str(placed["orderId"])})
        if spot is None:  # placed a moment ago, not yet visible in orderInfo
            return self._plan_view(raw, "open", Decimal(0), None)
        return self._merged(raw, spot)

    def _merged(self, plan: Mapping[str, Any], spot_raw: dict[str, Any]) -> VenueOrder:
        spot = self.parse_order(spot_raw)
        return self._plan_view({**plan, "subOrder": spot_raw}, spot.status, spot.filled_qty, spot.avg_price)

    def _plan_view(
        self, raw: dict[str, Any], status: OrderStatus, filled: Decimal, avg_price: Decimal | None
    ) -> VenueOrder:
        limit_price = to_decimal(raw.get("executePrice") or "0", "executePrice", self.venue)
        size = to_decimal(raw.get("size") or "0", "size", self.venue)
        is_limit = raw.get("orderType") == "limit"
        return VenueOrder(
            venue_order_id=str(require(raw, "orderId", self.venue)),
            client_order_id=raw.get("clientOid", ""),
            symbol=raw.get("symbol", ""),
            side=raw.get("side", ""),
            # Bitget does not say whether a trigger is a stop or a take-profit (see module doc).
            type="trigger_limit" if is_limit else "trigger_market",
            status=status,
            quantity=size or None if raw.get("planType", "amount") == "amount" else None,
            filled_qty=filled,
            avg_price=avg_price,
            price=limit_price if is_limit and limit_price else None,
            raw=raw,
        )

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """Open spot orders and plan orders that have not fired yet.

        Without a symbol, current-plan-order is called without one too: newer copies of the doc mark
        `symbol` optional there, older ones required [UNCONFIRMED which the live venue enforces].
        """
        data = self._list(
            self._request("GET", "/api/v2/spot/trade/unfilled-orders", {"symbol": symbol}, signed=True), "orders"
        )
        plans = self._plan_pages("/api/v2/spot/trade/current-plan-order", {"symbol": symbol})
        return [self.parse_order(raw) for raw in data] + [self.parse_plan_order(raw) for raw in plans]

    def trades(self, symbol: str, *, start_ms: int | None = None, limit: int | None = None) -> list[VenueTrade]:
        data = self._list(
            self._request(
                "GET",
                "/api/v2/spot/trade/fills",
                {"symbol": symbol, "startTime": start_ms, "limit": limit},
                signed=True,
            ),
            "fills",
        )
        return [self._parse_fill(raw) for raw in data]

    def _parse_fill(self, raw: dict[str, Any]) -> VenueTrade:
        fee = raw.get("feeDetail") or {}
        return VenueTrade(
            trade_id=str(require(raw, "tradeId", self.venue)),
            order_id=str(require(raw, "orderId", self.venue)),
            symbol=raw.get("symbol", ""),
            side=raw.get("side"),
            price=to_decimal(require(raw, "priceAvg", self.venue), "priceAvg", self.venue),
            qty=to_decimal(require(raw, "size", self.venue), "size", self.venue),
            fee=abs(to_decimal(fee.get("totalFee", "0"), "totalFee", self.venue)),
            fee_asset=fee.get("feeCoin", ""),
            time_ms=int(require(raw, "cTime", self.venue)),
        )

    def parse_order(self, raw: dict[str, Any]) -> VenueOrder:
        status = STATUS_IN.get(str(require(raw, "status", self.venue)))
        if status is None:
            raise MalformedResponse(f"unknown order status {raw.get('status')!r}", venue=self.venue)
        filled = to_decimal(raw.get("baseVolume") or "0", "baseVolume", self.venue)
        avg = to_decimal(raw.get("priceAvg") or "0", "priceAvg", self.venue)
        price = to_decimal(raw.get("price") or "0", "price", self.venue)
        size = to_decimal(raw.get("size") or "0", "size", self.venue)
        is_quote_sized = raw.get("orderType") == "market" and raw.get("side") == "buy"
        return VenueOrder(
            venue_order_id=str(require(raw, "orderId", self.venue)),
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
