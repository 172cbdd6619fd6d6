"""Binance spot (REST /api/v3). Also the protocol of our simulator ("sim").

Signing (rest-api.md, "SIGNED endpoint security"): HMAC-SHA256 of the exact query string sent
(percent-encoded, parameters in the order sent, not sorted), lowercase hex, appended as the last
parameter `signature`. Everything goes in the query string, so query == signed payload.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from decimal import Decimal
from typing import Any, ClassVar
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
    Balance,
    Kline,
    OcoRequest,
    OcoResult,
    OrderRequest,
    SymbolRules,
    VenueOrder,
    VenueTrade,
    oco_leg_ids,
)
from core.exchanges.rules import decimal_str
from core.exchanges.spot.base import Exchange, require, to_decimal

log = logging.getLogger(__name__)

ORDER_TYPES_OUT = {
    "market": "MARKET",
    "limit": "LIMIT",
    "stop_loss": "STOP_LOSS",
    "take_profit": "TAKE_PROFIT",
    "stop_loss_limit": "STOP_LOSS_LIMIT",
    "take_profit_limit": "TAKE_PROFIT_LIMIT",
}
ORDER_TYPES_IN = {v: k for k, v in ORDER_TYPES_OUT.items()} | {"LIMIT_MAKER": "limit"}
# trailingDelta is in basis points (trailing-stop-faq.md); the TRAILING_DELTA filter bounds it, 10..2000 on Binance.
TRAIL_BPS_RANGE = (10, 2000)
STATUS_IN = {
    "NEW": "open",
    "PENDING_NEW": "open",
    "PARTIALLY_FILLED": "partially_filled",
    "FILLED": "filled",
    "CANCELED": "cancelled",
    "PENDING_CANCEL": "open",
    "REJECTED": "rejected",
    "EXPIRED": "expired",
    "EXPIRED_IN_MATCH": "expired",
}
INTERVALS = frozenset(
    ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"]
)

AUTH_CODES = {-1002, -1022, -2014, -2015}
RATE_CODES = {-1003, -1015}
BUSY_CODES = {-1000, -1001, -1006, -1007, -1008}
NOT_FOUND_CODES = {-2013}
# "Timestamp for this request is outside of the recvWindow" (or more than 1 s ahead): the venue did
# not execute the request, so after re-measuring the clock it is safe to send it once more as is.
TIMESTAMP_REJECTED = -1021


def sign(secret: str, payload: str) -> str:
    """Binance HMAC-SHA256 signature of `payload` (query string + body, as sent)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signed_query(secret: str, params: list[tuple[str, str]]) -> str:
    """The query string as sent, `signature` last (signed payload = everything before it)."""
    query = urlencode(params)
    return f"{query}&signature={sign(secret, query)}"


def _param(value: Any) -> str:
    if isinstance(value, Decimal):
        return decimal_str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def error_for(code: int | None, message: str, *, status: int, venue: str = "binance") -> ExchangeError:
    """Map a Binance {code,msg} error onto the taxonomy, keeping both for the user."""
    lowered = message.lower()
    if code in AUTH_CODES or status == 401:
        cls: type[ExchangeError] = AuthError
    elif code in RATE_CODES:
        cls = RateLimited
    elif code in BUSY_CODES or status >= 500:
        cls = Unavailable
    elif code in NOT_FOUND_CODES or "unknown order" in lowered or "does not exist" in lowered:
        cls = OrderNotFound
    elif "insufficient balance" in lowered:
        cls = InsufficientFunds
    elif code == TIMESTAMP_REJECTED:
        cls = AuthError  # our clock, not the key: BinanceSpot re-syncs and retries once before raising it
    elif code is not None and (code in (-2010, -2011) or -1199 <= code <= -1100 or code == -1013):
        cls = InvalidOrder
    else:
        cls = ExchangeError
    return cls(message or f"HTTP {status}", venue=venue, code=code)


class BinanceSpot(Exchange):
    venue = "binance"
    default_base_url = "https://api.binance.com"
    venue_limits = ("6000/minute",)  # REQUEST_WEIGHT per IP (exchangeInfo.rateLimits)
    key_limits = ("100/10 seconds", "200000/day")  # ORDERS per account (exchangeInfo.rateLimits example)
    key_limits_count_every_request = False
    has_native_oco = True
    recv_window_ms = 5000

    weights: ClassVar[dict[str, int]] = {
        "/api/v3/exchangeInfo": 20,
        "/api/v3/account": 20,
        "/api/v3/order:GET": 4,
        "/api/v3/openOrders": 6,
        "/api/v3/myTrades": 20,
        "/api/v3/klines": 2,
    }

    # ---- transport ---------------------------------------------------------------------------

    def _attempt(self, method: str, path: str, params: dict[str, Any], signed: bool) -> Any:
        items = [(k, _param(v)) for k, v in params.items() if v is not None]
        if signed:
            items += [("recvWindow", str(self.recv_window_ms)), ("timestamp", str(self.now_ms()))]
        query = signed_query(self._api_secret, items) if signed else urlencode(items)
        headers = {"X-MBX-APIKEY": self._api_key} if signed else {}
        response = self._http(method, path, query=query, headers=headers)
        payload = self._json(response)
        if response.status_code >= 400 or (
            isinstance(payload, dict) and "code" in payload and "msg" in payload and payload.get("code") not in (0, 200)
        ):
            code = payload.get("code") if isinstance(payload, dict) else None
            message = str(payload.get("msg", "")) if isinstance(payload, dict) else ""
            raise error_for(code, message, status=response.status_code, venue=self.venue)
        return payload

    def _attempt_in_time(self, method: str, path: str, params: dict[str, Any], signed: bool) -> Any:
        """One attempt; a timestamp refusal re-measures the clock and re-signs the same request once.

        Orders keep their client order id across the two sends: -1021 means the first was not executed.
        """
        try:
            return self._attempt(method, path, params, signed)
        except AuthError as err:
            if err.code != TIMESTAMP_REJECTED:
                raise
            log.warning(
                "timestamp_rejected_resync",
                extra={"venue": self.venue, "path": path, "offset_ms": self.clock.offset_ms},
            )
        self.clock.sync()
        return self._attempt(method, path, params, signed)

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        signed: bool = False,
        idempotent: bool = True,
    ) -> Any:
        cost = self.weights.get(f"{path}:{method}", self.weights.get(path, 1))
        return self._call(
            lambda: self._attempt_in_time(method, path, dict(params or {}), signed), idempotent=idempotent, cost=cost
        )

    # ---- market data --------------------------------------------------------------------------

    def server_time_ms(self) -> int:
        payload = self._request("GET", "/api/v3/time")
        return int(require(payload, "serverTime", self.venue))

    def load_markets(self) -> dict[str, SymbolRules]:
        payload = self._request("GET", "/api/v3/exchangeInfo")
        return {rules.symbol: rules for rules in map(self._parse_rules, require(payload, "symbols", self.venue))}

    def _parse_rules(self, raw: dict[str, Any]) -> SymbolRules:
        filters = {f.get("filterType"): f for f in raw.get("filters", [])}
        price = filters.get("PRICE_FILTER", {})
        lot = filters.get("LOT_SIZE", {})
        notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}

        def number(source: dict[str, Any], name: str) -> Decimal:
            return to_decimal(source.get(name, "0"), f"{raw.get('symbol')} {name}", self.venue)

        return SymbolRules(
            symbol=require(raw, "symbol", self.venue),
            base=raw.get("baseAsset", ""),
            quote=raw.get("quoteAsset", ""),
            tick_size=number(price, "tickSize"),
            step_size=number(lot, "stepSize"),
            min_qty=number(lot, "minQty"),
            min_notional=number(notional, "minNotional"),
            max_qty=number(lot, "maxQty") or None,
            order_types=frozenset(
                self._order_types(raw.get("orderTypes", []))
                | (
                    {"trailing_stop"}
                    if raw.get("allowTrailingStop") and "STOP_LOSS" in raw.get("orderTypes", [])
                    else set()
                )
            ),
            oco_allowed=bool(raw.get("ocoAllowed")),
            trading=raw.get("status", "TRADING") == "TRADING",
        )

    @staticmethod
    def _order_types(venue_types: list[str]) -> set[str]:
        return {ORDER_TYPES_IN[t] for t in venue_types if t in ORDER_TYPES_IN}

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
            raise ValueError(f"unsupported Binance interval {interval!r}")
        rows = self._request(
            "GET",
            "/api/v3/klines",
            {"symbol": symbol, "interval": interval, "startTime": start_ms, "endTime": end_ms, "limit": limit},
        )
        if not isinstance(rows, list):
            raise self._malformed("klines", rows)
        return [self._parse_kline(row) for row in rows]

    def _parse_kline(self, row: Any) -> Kline:
        if not isinstance(row, list) or len(row) < 6:
            raise self._malformed("kline row", row)
        o, h, low, c, v = (to_decimal(x, "kline", self.venue) for x in row[1:6])
        return Kline(open_time_ms=int(row[0]), open=o, high=h, low=low, close=c, volume=v)

    def _malformed(self, what: str, payload: Any) -> ExchangeError:
        return MalformedResponse(f"unexpected {what}: {str(payload)[:200]}", venue=self.venue)

    # ---- account ----------------------------------------------------------------------------

    def balances(self) -> dict[str, Balance]:
        payload = self._request("GET", "/api/v3/account", {"omitZeroBalances": "true"}, signed=True)
        result = {}
        for raw in require(payload, "balances", self.venue):
            asset = require(raw, "asset", self.venue)
            result[asset] = Balance(
                asset=asset,
                free=to_decimal(raw.get("free"), f"{asset} free", self.venue),
                locked=to_decimal(raw.get("locked", "0"), f"{asset} locked", self.venue),
            )
        return result

    def _send_order(self, order: OrderRequest) -> VenueOrder:
        # Parameter order as in the docs' examples (symbol, side, type, timeInForce, quantity, price).
        params: dict[str, Any] = {
            "symbol": order.symbol,
            "side": order.side.upper(),
            "type": trailing_type(order) if order.type == "trailing_stop" else ORDER_TYPES_OUT[order.type],
            "timeInForce": order.time_in_force if order.price is not None else None,
            "quantity": order.quantity,
            "quoteOrderQty": order.quote_quantity,
            "price": order.price,
            "stopPrice": order.stop_price,
            "trailingDelta": trailing_delta_bps(order.trail_pct) if order.trail_pct is not None else None,
            "newClientOrderId": order.client_order_id,
            # FULL carries the fills: no trades query (weight 20) per filled order
            "newOrderRespType": "FULL",
        }
        payload = self._request("POST", "/api/v3/order", params, signed=True, idempotent=False)
        return self.parse_order(payload)

    def _send_native_oco(self, oco: OcoRequest, take_profit: OrderRequest, stop: OrderRequest) -> OcoResult:
        tp_id, sl_id = oco_leg_ids(oco.client_order_id)
        limit_leg = {"Type": "LIMIT_MAKER", "Price": take_profit.price, "ClientOrderId": tp_id}
        stop_leg = {
            "Type": ORDER_TYPES_OUT[stop.type],
            "StopPrice": stop.stop_price,
            "Price": stop.price,
            "ClientOrderId": sl_id,
            "TimeInForce": "GTC" if stop.price is not None else None,
        }
        above, below = (limit_leg, stop_leg) if oco.side == "sell" else (stop_leg, limit_leg)
        params: dict[str, Any] = {
            "symbol": oco.symbol,
            "side": oco.side.upper(),
            "quantity": take_profit.quantity,
            "listClientOrderId": oco.client_order_id,
            "newOrderRespType": "RESULT",
        }
        params |= {f"above{k}": v for k, v in above.items()} | {f"below{k}": v for k, v in below.items()}
        payload = self._request("POST", "/api/v3/orderList/oco", params, signed=True, idempotent=False)
        orders = tuple(self.parse_order(report) for report in require(payload, "orderReports", self.venue))
        return OcoResult(
            client_order_id=oco.client_order_id,
            symbol=oco.symbol,
            orders=orders,
            emulated=False,
            venue_list_id=str(payload.get("orderListId")),
        )

    def _get_native_oco(self, symbol: str, client_order_id: str) -> OcoResult:
        payload = self._request("GET", "/api/v3/orderList", {"origClientOrderId": client_order_id}, signed=True)
        orders = tuple(
            self.get_order(symbol, venue_order_id=str(require(leg, "orderId", self.venue)))
            for leg in require(payload, "orders", self.venue)
        )
        return OcoResult(
            client_order_id=client_order_id,
            symbol=symbol,
            orders=orders,
            emulated=False,
            venue_list_id=str(payload.get("orderListId")),
        )

    def cancel_order(
        self, symbol: str, *, venue_order_id: str | None = None, client_order_id: str | None = None
    ) -> VenueOrder:
        payload = self._request(
            "DELETE", "/api/v3/order", self._order_ref(symbol, venue_order_id, client_order_id), signed=True
        )
        return self.parse_order(payload)

    def get_order(
        self, symbol: str, *, venue_order_id: str | None = None, client_order_id: str | None = None
    ) -> VenueOrder:
        payload = self._request(
            "GET", "/api/v3/order", self._order_ref(symbol, venue_order_id, client_order_id), signed=True
        )
        return self.parse_order(payload)

    @staticmethod
    def _order_ref(symbol: str, venue_order_id: str | None, client_order_id: str | None) -> dict[str, Any]:
        if not venue_order_id and not client_order_id:
            raise InvalidOrder("give venue_order_id or client_order_id")
        return {"symbol": symbol, "orderId": venue_order_id, "origClientOrderId": client_order_id}

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        payload = self._request("GET", "/api/v3/openOrders", {"symbol": symbol}, signed=True)
        if not isinstance(payload, list):
            raise self._malformed("open orders", payload)
        return [self.parse_order(raw) for raw in payload]

    def trades(self, symbol: str, *, start_ms: int | None = None, limit: int | None = None) -> list[VenueTrade]:
        payload = self._request(
            "GET", "/api/v3/myTrades", {"symbol": symbol, "startTime": start_ms, "limit": limit}, signed=True
        )
        if not isinstance(payload, list):
            raise self._malformed("trades", payload)
        return [self._parse_trade(raw) for raw in payload]

    def _parse_trade(self, raw: dict[str, Any]) -> VenueTrade:
        """One trade of GET /api/v3/myTrades."""
        return self._trade(
            raw,
            trade_id=require(raw, "id", self.venue),
            order_id=require(raw, "orderId", self.venue),
            symbol=raw.get("symbol", ""),
            side="buy" if raw.get("isBuyer") else "sell",
            time_ms=require(raw, "time", self.venue),
        )

    def _trade(
        self, raw: Any, *, trade_id: Any, order_id: Any, symbol: str, side: str | None, time_ms: Any
    ) -> VenueTrade:
        def number(name: str) -> Decimal:
            return to_decimal(require(raw, name, self.venue), f"trade {name}", self.venue)

        return VenueTrade(
            trade_id=str(trade_id),
            order_id=str(order_id),
            symbol=symbol,
            side=side,  # type: ignore[arg-type]  # the venue's text: not narrowed to the Literal
            price=number("price"),
            qty=number("qty"),
            fee=number("commission"),
            fee_asset=raw.get("commissionAsset", ""),
            time_ms=int(time_ms),
        )

    def parse_order(self, raw: Any) -> VenueOrder:
        """An order object of POST/GET/DELETE /api/v3/order (RESULT/FULL shapes) or an OCO report."""
        status = STATUS_IN.get(require(raw, "status", self.venue))
        if status is None:
            raise self._malformed("order status", raw.get("status"))
        filled = to_decimal(raw.get("executedQty", "0"), "executedQty", self.venue)
        quote = to_decimal(raw.get("cummulativeQuoteQty", "0"), "cummulativeQuoteQty", self.venue)
        price = to_decimal(raw.get("price", "0"), "price", self.venue)
        quantity = to_decimal(raw.get("origQty", "0"), "origQty", self.venue)
        # A cancel answer names the cancelled order by origClientOrderId; clientOrderId is the cancel's own.
        client_id = raw.get("origClientOrderId") or raw.get("clientOrderId", "")
        venue_order_id = str(require(raw, "orderId", self.venue))
        side = str(raw.get("side", "")).lower()
        return VenueOrder(
            venue_order_id=venue_order_id,
            client_order_id=client_id,
            symbol=raw.get("symbol", ""),
            side=side,  # type: ignore[arg-type]  # the venue's text: not narrowed to the Literal
            type="trailing_stop"
            if raw.get("trailingDelta")
            else ORDER_TYPES_IN.get(raw.get("type", ""), str(raw.get("type", "")).lower()),
            status=status,  # type: ignore[arg-type]  # the venue's text: not narrowed to the Literal
            quantity=quantity or None,
            filled_qty=filled,
            avg_price=(quote / filled) if filled > 0 else None,
            price=price or None,
            raw=raw,
            # A FULL response's `fills`: price, qty, commission, commissionAsset, tradeId.
            trades=tuple(
                self._trade(
                    fill,
                    trade_id=require(fill, "tradeId", self.venue),
                    order_id=venue_order_id,
                    symbol=raw.get("symbol", ""),
                    side=side or None,
                    time_ms=raw.get("transactTime") or raw.get("updateTime") or 0,
                )
                for fill in raw.get("fills") or ()
            ),
        )


def trailing_type(order: OrderRequest) -> str:
    """A trailing stop on Binance (trailing-stop-faq.md): STOP_LOSS with trailingDelta trails from the
    submission; with an activation price (`stopPrice`, on the profitable side of the market: above it for a
    sell, below for a buy) it is a TAKE_PROFIT that starts trailing once the price reaches it."""
    return "TAKE_PROFIT" if order.stop_price is not None else "STOP_LOSS"


def trailing_delta_bps(trail_pct: Decimal) -> int:
    bps = int((trail_pct * 100).to_integral_value())
    low, high = TRAIL_BPS_RANGE
    if not low <= bps <= high:
        raise InvalidOrder(
            f"a Binance trailing stop trails by {Decimal(low) / 100}% to {Decimal(high) / 100}% (asked {trail_pct}%)",
            venue="binance",
        )
    return bps
