"""Bitget spot (REST v2).

Signing, error codes and the parsing of Bitget's JSON: bitget_wire.py.

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

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from core.exchanges.errors import ExchangeError, InvalidOrder, MalformedResponse, OrderNotFound
from core.exchanges.models import (
    TRIGGERED_TYPES,
    Balance,
    Kline,
    OrderRequest,
    SymbolRules,
    VenueOrder,
    VenueTrade,
)
from core.exchanges.spot.base import Exchange, require
from core.exchanges.spot.bitget_wire import (
    INTERVALS,
    PLAN_STATUS_IN,
    VENUE,
    acknowledged,
    error_for,
    is_plan,
    param,
    parse_balances,
    parse_candles,
    parse_fill,
    parse_order,
    parse_rules,
    plan_view,
    prehash,
    sign,
)

PLAN_HISTORY_DAYS = 89  # history-plan-order: startTime..endTime must not exceed 90 days
PLAN_PAGE_SIZE = 100  # the documented maximum `limit`
PLAN_MAX_PAGES = 5
DAY_MS = 86_400_000


class BitgetSpot(Exchange):
    venue = VENUE
    default_base_url = "https://api.bitget.com"
    venue_limits = ("20/second",)  # public market endpoints: 20/s per IP
    key_limits = ("10/second",)  # place-order: 10/s per UID, the tightest trade endpoint
    key_limits_count_every_request = False

    def _attempt(self, method: str, path: str, params: dict[str, Any], signed: bool) -> Any:
        clean = {k: param(v) for k, v in params.items() if v is not None}
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
        return {rules.symbol: rules for rules in map(parse_rules, data)}

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
        return parse_candles(rows)

    # ---- account and orders -------------------------------------------------------------------

    def balances(self) -> dict[str, Balance]:
        return parse_balances(self._list(self._request("GET", "/api/v2/spot/account/assets", signed=True), "assets"))

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
        return acknowledged(order, data)

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
        return acknowledged(order, data)

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
            return parse_order(raw)
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
            return plan_view(raw, status, Decimal(0), None)
        plan_id = str(require(raw, "orderId", self.venue))
        subs = self._list(
            self._request("GET", "/api/v2/spot/trade/plan-sub-order", {"planOrderId": plan_id}, signed=True),
            "plan sub-orders",
        )
        placed = next((sub for sub in subs if sub.get("orderId") and sub.get("status") != "fail"), None)
        if placed is None:
            failed = any(sub.get("status") == "fail" for sub in subs)
            return plan_view(raw, "rejected" if failed else "open", Decimal(0), None)
        spot = self._spot_order({"orderId": str(placed["orderId"])})
        if spot is None:  # placed a moment ago, not yet visible in orderInfo
            return plan_view(raw, "open", Decimal(0), None)
        return self._merged(raw, spot)

    def _merged(self, plan: Mapping[str, Any], spot_raw: dict[str, Any]) -> VenueOrder:
        spot = parse_order(spot_raw)
        return plan_view({**plan, "subOrder": spot_raw}, spot.status, spot.filled_qty, spot.avg_price)

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """Open spot orders and plan orders that have not fired yet.

        Without a symbol, current-plan-order is called without one too: newer copies of the doc mark
        `symbol` optional there, older ones required [UNCONFIRMED which the live venue enforces].
        """
        data = self._list(
            self._request("GET", "/api/v2/spot/trade/unfilled-orders", {"symbol": symbol}, signed=True), "orders"
        )
        plans = self._plan_pages("/api/v2/spot/trade/current-plan-order", {"symbol": symbol})
        return [parse_order(raw) for raw in data] + [self.parse_plan_order(raw) for raw in plans]

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
        return [parse_fill(raw) for raw in data]
