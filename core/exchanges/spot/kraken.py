"""Kraken spot (REST /0).

Signing (guides/spot-rest-auth): API-Sign = base64(HMAC-SHA512(base64decode(secret),
uri_path + SHA256(nonce + post_data))), post_data being the exact form body sent (it contains the
nonce). Nonces must increase per key across every process using it: they come from NonceSource
(one Redis counter). Errors arrive with HTTP 200 in {"error": [...]}.

Symbols are Kraken's altnames (e.g. XBTUSD); balances keep Kraken's asset codes (XXBT, ZUSD).
There is no OCO: place_oco emulates it with two linked orders.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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
from core.exchanges.models import Balance, Kline, OrderRequest, SymbolRules, VenueOrder, VenueTrade
from core.exchanges.nonce import NonceSource
from core.exchanges.rules import decimal_str
from core.exchanges.spot.base import Exchange, require, to_decimal

ORDER_TYPES_OUT = {
    "market": "market",
    "limit": "limit",
    "stop_loss": "stop-loss",
    "take_profit": "take-profit",
    "stop_loss_limit": "stop-loss-limit",
    "take_profit_limit": "take-profit-limit",
    "trailing_stop": "trailing-stop",
}
ORDER_TYPES_IN = {v: k for k, v in ORDER_TYPES_OUT.items()}
INTERVALS = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440, "1w": 10080, "2w": 21600}

# Matched on the error prefix Kraken documents ("<severity><category>:<message>").
ERROR_CLASSES: list[tuple[str, type[ExchangeError]]] = [
    ("EAPI:Invalid key", AuthError),
    ("EAPI:Invalid signature", AuthError),
    ("EAPI:Invalid nonce", AuthError),
    ("EAPI:Bad request", InvalidOrder),
    ("EGeneral:Permission denied", AuthError),
    ("EAPI:Rate limit exceeded", RateLimited),
    ("EOrder:Rate limit exceeded", RateLimited),
    ("EService:Throttled", RateLimited),
    ("EGeneral:Too many requests", RateLimited),
    ("EService:Unavailable", Unavailable),
    ("EService:Busy", Unavailable),
    ("EService:Market in cancel_only", InvalidOrder),
    ("EService:Deadline elapsed", Unavailable),
    ("EGeneral:Internal error", Unavailable),
    ("EOrder:Insufficient funds", InsufficientFunds),
    ("EFunding:Insufficient funds", InsufficientFunds),
    ("EOrder:Unknown order", OrderNotFound),
    ("EOrder:Invalid order", OrderNotFound),
    ("EOrder:", InvalidOrder),
    ("EGeneral:Invalid arguments", InvalidOrder),
    ("EQuery:Unknown asset pair", InvalidOrder),
]


def sign(secret_b64: str, uri_path: str, nonce: int | str, post_data: str) -> str:
    sha = hashlib.sha256(f"{nonce}{post_data}".encode()).digest()
    mac = hmac.new(base64.b64decode(secret_b64), uri_path.encode() + sha, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def error_for(messages: list[str], venue: str = "kraken") -> ExchangeError:
    first = messages[0]
    normalised = first.replace(": ", ":")
    cls = next((c for prefix, c in ERROR_CLASSES if normalised.startswith(prefix)), ExchangeError)
    return cls("; ".join(messages), venue=venue, code=first.split(":", 1)[0])


def _param(value: Any) -> str:
    return decimal_str(value) if isinstance(value, Decimal) else str(value)


class KrakenSpot(Exchange):
    venue = "kraken"
    default_base_url = "https://api.kraken.com"
    venue_limits = ("1/second",)  # public endpoints, per IP
    # Starter tier: counter max 15, decaying 0.33/s, i.e. 15 calls then one per 3 s.
    key_limits = ("15/45 seconds",)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.nonces = NonceSource(self.redis, venue=self.venue, api_key=self._api_key)
        self._pair_keys: dict[str, str] = {}  # Kraken pair key (XXBTZUSD) -> altname (XBTUSD)

    def _attempt(self, path: str, params: dict[str, Any], signed: bool) -> Any:
        items = [(k, _param(v)) for k, v in params.items() if v is not None]
        if signed:
            nonce = self.nonces.next()
            body = urlencode([("nonce", str(nonce)), *items])
            headers = {
                "API-Key": self._api_key,
                "API-Sign": sign(self._api_secret, path, nonce, body),
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            }
            response = self._http("POST", path, body=body, headers=headers)
        else:
            response = self._http("GET", path, query=urlencode(items))
        payload = self._json(response)
        if response.status_code >= 500:
            raise Unavailable(f"venue error HTTP {response.status_code}", venue=self.venue, code=response.status_code)
        if not isinstance(payload, dict) or not isinstance(payload.get("error", []), list):
            raise MalformedResponse(f"expected {{error, result}}, got {str(payload)[:120]}", venue=self.venue)
        if payload.get("error"):
            raise error_for([str(e) for e in payload["error"]], self.venue)
        return require(payload, "result", self.venue)

    def _public(self, name: str, params: dict[str, Any] | None = None) -> Any:
        return self._call(lambda: self._attempt(f"/0/public/{name}", dict(params or {}), False), idempotent=True)

    def _private(self, name: str, params: dict[str, Any] | None = None, *, idempotent: bool = True) -> Any:
        return self._call(lambda: self._attempt(f"/0/private/{name}", dict(params or {}), True), idempotent=idempotent)

    # ---- market data --------------------------------------------------------------------------

    def server_time_ms(self) -> int:
        return int(require(self._public("Time"), "unixtime", self.venue)) * 1000

    def load_markets(self) -> dict[str, SymbolRules]:
        result = self._public("AssetPairs")
        if not isinstance(result, dict):
            raise MalformedResponse("AssetPairs result is not an object", venue=self.venue)
        markets = {}
        for key, raw in result.items():
            rules = self._parse_rules(raw)
            self._pair_keys[key] = rules.symbol
            markets[rules.symbol] = rules
        return markets

    def _parse_rules(self, raw: dict[str, Any]) -> SymbolRules:
        symbol = require(raw, "altname", self.venue)
        base, _, quote = str(raw.get("wsname", "")).partition("/")

        def number(name: str, default: str = "0") -> Decimal:
            return to_decimal(raw.get(name, default), f"{symbol} {name}", self.venue)

        tick = number("tick_size") or Decimal(1).scaleb(-int(number("pair_decimals")))
        return SymbolRules(
            symbol=symbol,
            base=base or raw.get("base", ""),
            quote=quote or raw.get("quote", ""),
            tick_size=tick,
            step_size=Decimal(1).scaleb(-int(number("lot_decimals"))),
            min_qty=number("ordermin"),
            min_notional=number("costmin"),
            order_types=frozenset(ORDER_TYPES_OUT),
            oco_allowed=False,
            trading=raw.get("status", "online") == "online",
        )

    def _symbol_of(self, pair: str) -> str:
        if not self._pair_keys:
            self.markets()
        return self._pair_keys.get(pair, pair)

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int | None = None,
    ) -> list[Kline]:
        """At most the last 720 candles (Kraken's cap); the last row is the live, unfinished one."""
        if interval not in INTERVALS:
            raise ValueError(f"unsupported Kraken interval {interval!r}")
        since = start_ms // 1000 if start_ms is not None else None
        result = self._public("OHLC", {"pair": symbol, "interval": INTERVALS[interval], "since": since})
        rows = next((v for k, v in result.items() if k != "last"), None) if isinstance(result, dict) else None
        if not isinstance(rows, list):
            raise MalformedResponse(f"OHLC result has no candle rows: {str(result)[:120]}", venue=self.venue)
        klines = []
        for row in rows:
            if not isinstance(row, list) or len(row) < 7:
                raise MalformedResponse(f"unexpected OHLC row {str(row)[:120]}", venue=self.venue)
            o, h, low, c = (to_decimal(x, "ohlc", self.venue) for x in row[1:5])
            klines.append(
                Kline(
                    open_time_ms=int(row[0]) * 1000,
                    open=o,
                    high=h,
                    low=low,
                    close=c,
                    volume=to_decimal(row[6], "ohlc volume", self.venue),
                )
            )
        klines = [k for k in klines if end_ms is None or k.open_time_ms <= end_ms]
        return klines[-limit:] if limit else klines

    # ---- account and orders -------------------------------------------------------------------

    def balances(self) -> dict[str, Balance]:
        result = self._private("Balance")
        if not isinstance(result, dict):
            raise MalformedResponse("Balance result is not an object", venue=self.venue)
        return {
            asset: Balance(asset=asset, free=to_decimal(amount, f"{asset} balance", self.venue))
            for asset, amount in result.items()
        }

    def native_trailing(self, order: OrderRequest) -> bool:
        return order.stop_price is None and super().native_trailing(order)  # no activation price at Kraken

    def _send_order(self, order: OrderRequest) -> VenueOrder:
        if order.time_in_force == "FOK":
            raise InvalidOrder("Kraken spot has no FOK time in force (use GTC or IOC)", venue=self.venue)
        triggered = order.stop_price is not None
        if order.type == "trailing_stop" and triggered:
            raise InvalidOrder("Kraken's trailing stop has no activation price: leave it empty", venue=self.venue)
        params: dict[str, Any] = {
            "ordertype": ORDER_TYPES_OUT[order.type],
            "type": order.side,
            "pair": order.symbol,
            "volume": order.quantity if order.quantity is not None else order.quote_quantity,
            # For stop/take-profit types `price` is the trigger and `price2` the limit; a trailing stop's
            # `price` is its offset from the best price, relative: "+" (the side gives the direction), "%" suffix.
            "price": f"+{decimal_str(order.trail_pct)}%"
            if order.trail_pct is not None
            else order.stop_price
            if triggered
            else order.price,
            "price2": order.price if triggered else None,
            "oflags": "viqc" if order.quote_quantity is not None else None,
            "timeinforce": order.time_in_force if order.type == "limit" else None,
            "cl_ord_id": order.client_order_id,
        }
        result = self._private("AddOrder", params, idempotent=False)
        txids = require(result, "txid", self.venue)
        if not isinstance(txids, list) or not txids:
            raise MalformedResponse(f"AddOrder returned no txid: {str(result)[:120]}", venue=self.venue)
        return VenueOrder(
            venue_order_id=str(txids[0]),
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            type=order.type,
            status="open",
            quantity=order.quantity,
            filled_qty=Decimal(0),
            avg_price=None,
            price=order.price,
            raw=result,
        )

    def cancel_order(
        self, symbol: str, *, venue_order_id: str | None = None, client_order_id: str | None = None
    ) -> VenueOrder:
        ref = {"txid": venue_order_id} if venue_order_id else {"cl_ord_id": self._require_id(client_order_id)}
        self._private("CancelOrder", ref)
        return self.get_order(symbol, venue_order_id=venue_order_id, client_order_id=client_order_id)

    @staticmethod
    def _require_id(client_order_id: str | None) -> str:
        if not client_order_id:
            raise InvalidOrder("give venue_order_id or client_order_id")
        return client_order_id

    def get_order(
        self, symbol: str, *, venue_order_id: str | None = None, client_order_id: str | None = None
    ) -> VenueOrder:
        """By txid through QueryOrders; by client id through OpenOrders then ClosedOrders.

        QueryOrders takes only txid (and userref). OpenOrders and ClosedOrders both document a
        `cl_ord_id` filter ("Restrict results to given client order id", docs.kraken.com
        rest-api/get-open-orders and get-closed-orders); the rows are still matched on their echoed
        `cl_ord_id`, so a filter that were ignored could never hand back somebody else's order.
        """
        if venue_order_id:
            found = self._private("QueryOrders", {"txid": venue_order_id})
            if isinstance(found, dict) and isinstance(found.get(venue_order_id), dict):
                return self.parse_order(venue_order_id, found[venue_order_id])
        else:
            client_id = self._require_id(client_order_id)
            for endpoint, key in (("OpenOrders", "open"), ("ClosedOrders", "closed")):
                orders = self._orders_in(self._private(endpoint, {"cl_ord_id": client_id}), key)
                match = next(
                    (
                        (txid, raw)
                        for txid, raw in orders.items()
                        if isinstance(raw, dict) and raw.get("cl_ord_id") == client_id
                    ),
                    None,
                )
                if match is not None:
                    return self.parse_order(*match)
        raise OrderNotFound(f"no order {venue_order_id or client_order_id} on {symbol}", venue=self.venue)

    def _orders_in(self, result: Any, key: str) -> dict[str, Any]:
        orders = require(result, key, self.venue)
        if not isinstance(orders, dict):
            raise MalformedResponse(f"'{key}' is not an object", venue=self.venue)
        return orders

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        orders = self._orders_in(self._private("OpenOrders"), "open")
        parsed = [self.parse_order(txid, raw) for txid, raw in orders.items()]
        return [o for o in parsed if symbol is None or o.symbol == symbol]

    def trades(self, symbol: str, *, start_ms: int | None = None, limit: int | None = None) -> list[VenueTrade]:
        result = self._private("TradesHistory", {"start": start_ms // 1000 if start_ms else None})
        fee_asset = self.rules(symbol).quote
        found = []
        for trade_id, raw in self._orders_in(result, "trades").items():
            if self._symbol_of(str(raw.get("pair", ""))) != symbol:
                continue
            found.append(
                VenueTrade(
                    trade_id=trade_id,
                    order_id=str(require(raw, "ordertxid", self.venue)),
                    symbol=symbol,
                    side=raw.get("type"),
                    price=to_decimal(require(raw, "price", self.venue), "price", self.venue),
                    qty=to_decimal(require(raw, "vol", self.venue), "vol", self.venue),
                    fee=to_decimal(raw.get("fee", "0"), "fee", self.venue),
                    fee_asset=fee_asset,
                    time_ms=int(Decimal(str(require(raw, "time", self.venue))) * 1000),
                )
            )
        found.sort(key=lambda t: t.time_ms)
        return found[-limit:] if limit else found

    def parse_order(self, txid: str, raw: dict[str, Any]) -> VenueOrder:
        descr = require(raw, "descr", self.venue)
        volume = to_decimal(raw.get("vol", "0"), "vol", self.venue)
        filled = to_decimal(raw.get("vol_exec", "0"), "vol_exec", self.venue)
        state = raw.get("status")
        if state in ("pending", "open"):
            status = "partially_filled" if filled > 0 else "open"
        elif state == "closed":
            status = "filled"
        elif state == "canceled":
            status = "cancelled"
        elif state == "expired":
            status = "expired"
        else:
            raise MalformedResponse(f"unknown order status {state!r}", venue=self.venue)
        avg = to_decimal(raw.get("price", "0"), "price", self.venue)
        ordertype = descr.get("ordertype", "")
        limit_field = "price" if ordertype == "limit" else "price2" if ordertype.endswith("-limit") else None
        limit_price = to_decimal(descr.get(limit_field) or "0", "descr price", self.venue) if limit_field else None
        return VenueOrder(
            venue_order_id=txid,
            client_order_id=str(raw.get("cl_ord_id") or ""),
            symbol=self._symbol_of(str(descr.get("pair", ""))),
            side=descr.get("type", ""),
            type=ORDER_TYPES_IN.get(ordertype, ordertype),
            status=status,  # type: ignore[arg-type]  # the venue's text: not narrowed to the Literal
            quantity=volume or None,
            filled_qty=filled,
            avg_price=avg if filled > 0 and avg > 0 else None,
            price=limit_price or None,
            raw=raw,
        )
