"""The Binance spot face of the simulator: the `/api/v3/*` REST endpoints, weights and authentication.

Same paths, weights and signature rules as the venue, for the subset our adapter uses. Everything
venue-specific lives here and in binance_wire.py / binance_order_params.py / binance_streams.py; the
matching engine only sees `OrderRequest`s.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web

from sim.spot.binance_order_params import checked_client_id, oco_leg, parse_order_request
from sim.spot.binance_wire import (
    API_KEY_PATTERN,
    ORDER_TYPES,
    WEIGHT_LIMIT_PER_MINUTE,
    BinanceError,
    Params,
    fmt,
    from_engine,
    kline_row,
    levels,
    mandatory,
    order_fields,
    order_response,
    parse_params,
    query_fields,
    sign,
    signature_payload,
)
from sim.spot.market import INTERVAL_MINUTES
from sim.spot.orders import EngineError, Side
from sim.spot.state import SimState
from sim.spot.trailing import TRAILING_DELTA_FILTER

log = logging.getLogger(__name__)

Handler = Callable[["BinanceFace", web.Request, Params, str | None], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    weight: int
    signed: bool
    handler: Handler


class BinanceFace:
    def __init__(self, state: SimState):
        self.state = state
        self.weights: dict[tuple[str, int], int] = {}

    # --- plumbing ---------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        table = [
            Route("GET", "/api/v3/ping", 1, False, BinanceFace.ping),
            Route("GET", "/api/v3/time", 1, False, BinanceFace.server_time),
            Route("GET", "/api/v3/exchangeInfo", 20, False, BinanceFace.exchange_info),
            Route("GET", "/api/v3/klines", 2, False, BinanceFace.klines),
            Route("GET", "/api/v3/uiKlines", 2, False, BinanceFace.klines),
            Route("GET", "/api/v3/depth", 5, False, BinanceFace.depth),
            Route("GET", "/api/v3/ticker/bookTicker", 2, False, BinanceFace.book_ticker),
            Route("GET", "/api/v3/ticker/price", 2, False, BinanceFace.ticker_price),
            Route("GET", "/api/v3/account", 20, True, BinanceFace.account),
            Route("POST", "/api/v3/order", 1, True, BinanceFace.new_order),
            Route("POST", "/api/v3/order/test", 1, True, BinanceFace.test_order),
            Route("DELETE", "/api/v3/order", 1, True, BinanceFace.cancel_order),
            Route("GET", "/api/v3/order", 4, True, BinanceFace.query_order),
            Route("GET", "/api/v3/openOrders", 6, True, BinanceFace.open_orders),
            Route("DELETE", "/api/v3/openOrders", 1, True, BinanceFace.cancel_open_orders),
            Route("GET", "/api/v3/allOrders", 20, True, BinanceFace.all_orders),
            Route("GET", "/api/v3/myTrades", 20, True, BinanceFace.my_trades),
            Route("POST", "/api/v3/orderList/oco", 1, True, BinanceFace.new_oco),
        ]
        return [web.route(r.method, r.path, self._wrap(r)) for r in table]

    def _wrap(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            headers = {"X-MBX-USED-WEIGHT-1M": str(self._use_weight(request, route.weight))}
            try:
                fault = await self.state.faults.before_request(request)
                if fault is not None:
                    fault.headers.update(headers)
                    return fault
                raw_query = request.rel_url.raw_query_string
                raw_body = (await request.read()).decode("ascii", "replace") if request.can_read_body else ""
                params = parse_params(raw_query, raw_body)
                account_id = self._authenticate(request, params, raw_query, raw_body) if route.signed else None
                if int(headers["X-MBX-USED-WEIGHT-1M"]) > WEIGHT_LIMIT_PER_MINUTE:
                    return self._rate_limited(headers)
                body = await route.handler(self, request, params, account_id)
            except BinanceError as error:
                return web.json_response({"code": error.code, "msg": error.msg}, status=error.status, headers=headers)
            except EngineError as error:
                failure = from_engine(error, cancel=request.method == "DELETE")
                return web.json_response({"code": failure.code, "msg": failure.msg}, status=400, headers=headers)
            if isinstance(body, web.StreamResponse):
                return body
            return web.Response(
                text=json.dumps(body, separators=(",", ":")), content_type="application/json", headers=headers
            )

        return handle

    def _use_weight(self, request: web.Request, weight: int) -> int:
        minute = int(time.time() // 60)
        key = (request.remote or "", minute)
        if len(self.weights) > 1000:
            self.weights = {k: v for k, v in self.weights.items() if k[1] >= minute - 1}
        self.weights[key] = self.weights.get(key, 0) + weight
        return self.weights[key]

    @staticmethod
    def _rate_limited(headers: dict[str, str]) -> web.Response:
        retry_after = 60 - int(time.time()) % 60
        return web.json_response(
            {
                "code": -1003,
                "msg": f"Too many requests; current limit of IP request weight is "
                f"{WEIGHT_LIMIT_PER_MINUTE} per 1 MINUTE. Please use WebSocket Streams "
                "for live updates to avoid polling the API.",
            },
            status=429,
            headers={**headers, "Retry-After": str(retry_after)},
        )

    def _authenticate(self, request: web.Request, params: Params, raw_query: str, raw_body: str) -> str:
        api_key = request.headers.get("X-MBX-APIKEY", "")
        if not API_KEY_PATTERN.match(api_key):
            raise BinanceError(-2014, "API-key format invalid.", status=401)
        credential = self.state.credentials.get(api_key)
        if credential is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        timestamp = params.integer("timestamp", required=True)
        if timestamp is not None and timestamp > 10**14:  # microseconds are accepted too
            timestamp //= 1000
        recv_window = Decimal(params.text("recvWindow") or "5000")
        if recv_window > 60000:
            raise BinanceError(-1131, "recvWindow must be less than 60000.")
        now = int(time.time() * 1000)
        if timestamp >= now + 1000:
            raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - timestamp > recv_window:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        payload, signature = signature_payload(raw_query, raw_body)
        if not signature:
            raise mandatory("signature")
        if not hmac.compare_digest(sign(credential.secret, payload), signature.lower()):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        return credential.account_id

    # --- public -----------------------------------------------------------------------------

    async def ping(self, request: web.Request, params: Params, _: str | None) -> dict:
        return {}

    async def server_time(self, request: web.Request, params: Params, _: str | None) -> dict:
        return {"serverTime": int(time.time() * 1000)}

    async def exchange_info(self, request: web.Request, params: Params, _: str | None) -> dict:
        wanted = list(self.state.market.symbols)
        if params.text("symbol"):
            params.symbol(self.state)
            wanted = [params.values["symbol"]]
        elif params.text("symbols"):
            try:
                wanted = [str(s) for s in json.loads(params.values["symbols"])]
            except (ValueError, TypeError) as exc:
                raise mandatory("symbols") from exc
            if any(s not in self.state.market.symbols for s in wanted):
                raise BinanceError(-1121, "Invalid symbol.")
        return {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": WEIGHT_LIMIT_PER_MINUTE,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(s) for s in wanted],
        }

    def _symbol_info(self, symbol: str) -> dict:
        instrument = self.state.engine.instruments[symbol]
        return {
            "symbol": symbol,
            "status": "TRADING",
            "baseAsset": instrument.base,
            "baseAssetPrecision": 8,
            "quoteAsset": instrument.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ORDER_TYPES,
            "icebergAllowed": False,
            "ocoAllowed": True,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": self.state.market.symbols[symbol].trailing_stop,
            "cancelReplaceAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt(instrument.min_price),
                    "maxPrice": fmt(instrument.max_price),
                    "tickSize": fmt(instrument.tick_size),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt(instrument.min_qty),
                    "maxQty": fmt(instrument.max_qty),
                    "stepSize": fmt(instrument.step_size),
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": fmt(Decimal(0)),
                    "maxQty": fmt(instrument.max_qty),
                    "stepSize": fmt(Decimal(0)),
                },
                {"filterType": "TRAILING_DELTA", **TRAILING_DELTA_FILTER},
                {
                    "filterType": "NOTIONAL",
                    "minNotional": fmt(instrument.min_notional),
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    async def klines(self, request: web.Request, params: Params, _: str | None) -> list:
        symbol = params.symbol(self.state)
        interval = params.text("interval", required=True)
        if interval not in INTERVAL_MINUTES:
            raise BinanceError(-1120, "Invalid interval.")
        limit = params.integer("limit") or 500
        if not 1 <= limit <= 1000:
            raise BinanceError(-1100, "Illegal characters found in parameter 'limit'; legal range is '1000'.")
        start, end = params.integer("startTime"), params.integer("endTime")
        if start is not None and end is not None and start > end:
            raise BinanceError(-1023, "Start time is greater than end time.")
        candles = await self.state.run_market(
            self.state.market.klines,
            symbol,
            interval,
            now_ms=int(self.state.market_time() * 1000),
            start_ms=start,
            end_ms=end,
            limit=limit,
        )
        return [kline_row(c) for c in candles]

    async def depth(self, request: web.Request, params: Params, _: str | None) -> dict:
        symbol = params.symbol(self.state)
        limit = params.integer("limit") or 100
        if not 1 <= limit <= 5000:
            raise BinanceError(-1100, "Illegal characters found in parameter 'limit'; legal range is '5000'.")
        book = self.state.books[symbol]
        bids, asks = book.sides(limit)
        return {"lastUpdateId": book.update_id, "bids": levels(bids), "asks": levels(asks)}

    async def book_ticker(self, request: web.Request, params: Params, _: str | None) -> dict | list:
        symbol = params.symbol(self.state, required=False)
        rows = [self._book_ticker(s) for s in ([symbol] if symbol else self.state.market.symbols)]
        return rows[0] if symbol else rows

    def _book_ticker(self, symbol: str) -> dict:
        bids, asks = self.state.books[symbol].sides(1)
        return {
            "symbol": symbol,
            "bidPrice": fmt(bids[0][0]),
            "bidQty": fmt(bids[0][1]),
            "askPrice": fmt(asks[0][0]),
            "askQty": fmt(asks[0][1]),
        }

    async def ticker_price(self, request: web.Request, params: Params, _: str | None) -> dict | list:
        symbol = params.symbol(self.state, required=False)
        rows = [
            {"symbol": s, "price": fmt(self.state.last_price(s))}
            for s in ([symbol] if symbol else self.state.market.symbols)
        ]
        return rows[0] if symbol else rows

    # --- private ----------------------------------------------------------------------------

    async def account(self, request: web.Request, params: Params, account_id: str | None) -> dict:
        account = self.state.engine.account(account_id)
        omit_zero = params.text("omitZeroBalances") == "true"
        balances = [
            {"asset": asset, "free": fmt(b.free), "locked": fmt(b.locked)}
            for asset, b in sorted(account.balances.items())
            if not (omit_zero and b.free == 0 and b.locked == 0)
        ]
        rates = {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000", "seller": "0.00000000"}
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": rates,
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": int(time.time() * 1000),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": self.state.credential_uid(account_id),
        }

    async def new_order(self, request: web.Request, params: Params, account_id: str | None) -> Any:
        order_request, resp_type = parse_order_request(params, self.state)
        order = self.state.engine.place(account_id, order_request)
        self.state.mark_dirty()
        await self.state.faults.after_order(request)
        return order_response(order, resp_type)

    async def test_order(self, request: web.Request, params: Params, account_id: str | None) -> dict:
        parse_order_request(params, self.state)
        return {}

    async def cancel_order(self, request: web.Request, params: Params, account_id: str | None) -> dict:
        symbol = params.symbol(self.state)
        order_id, client_id = params.integer("orderId"), params.text("origClientOrderId")
        if order_id is None and client_id is None:
            raise mandatory("orderId")
        try:
            order = self.state.engine.cancel(account_id, symbol, order_id, client_id)
        except EngineError as error:
            raise from_engine(error, cancel=True) from error
        self.state.mark_dirty()
        body = order_fields(order)
        body["origClientOrderId"] = order.client_order_id
        body["clientOrderId"] = params.text("newClientOrderId") or order.client_order_id
        body["transactTime"] = order.update_time
        return body

    async def cancel_open_orders(self, request: web.Request, params: Params, account_id: str | None) -> list:
        symbol = params.symbol(self.state)
        if not self.state.engine.open_orders(account_id, symbol):
            raise BinanceError(-2011, "Unknown order sent.")
        canceled = self.state.engine.cancel_all(account_id, symbol)
        self.state.mark_dirty()
        return [{**order_fields(o), "origClientOrderId": o.client_order_id} for o in canceled]

    async def query_order(self, request: web.Request, params: Params, account_id: str | None) -> dict:
        symbol = params.symbol(self.state)
        order_id, client_id = params.integer("orderId"), params.text("origClientOrderId")
        if order_id is None and client_id is None:
            raise mandatory("orderId")
        return query_fields(self.state.engine.find(account_id, symbol, order_id, client_id))

    async def open_orders(self, request: web.Request, params: Params, account_id: str | None) -> list:
        symbol = params.symbol(self.state, required=False)
        return [query_fields(o) for o in self.state.engine.open_orders(account_id, symbol)]

    async def all_orders(self, request: web.Request, params: Params, account_id: str | None) -> list:
        symbol = params.symbol(self.state)
        orders = self.state.engine.all_orders(account_id, symbol)
        from_id, start, end = params.integer("orderId"), params.integer("startTime"), params.integer("endTime")
        limit = min(params.integer("limit") or 500, 1000)
        orders = [
            o
            for o in orders
            if (from_id is None or o.order_id >= from_id)
            and (start is None or o.time >= start)
            and (end is None or o.time <= end)
        ]
        orders = orders[:limit] if from_id is not None or start is not None else orders[-limit:]
        return [query_fields(o) for o in orders]

    async def my_trades(self, request: web.Request, params: Params, account_id: str | None) -> list:
        symbol = params.symbol(self.state)
        fills = self.state.engine.account_fills(account_id, symbol)
        order_id, from_id = params.integer("orderId"), params.integer("fromId")
        start, end = params.integer("startTime"), params.integer("endTime")
        limit = min(params.integer("limit") or 500, 1000)
        fills = [
            f
            for f in fills
            if (order_id is None or f.order_id == order_id)
            and (from_id is None or f.trade_id >= from_id)
            and (start is None or f.time >= start)
            and (end is None or f.time <= end)
        ]
        fills = fills[:limit] if from_id is not None or start is not None else fills[-limit:]
        return [
            {
                "symbol": f.symbol,
                "id": f.trade_id,
                "orderId": f.order_id,
                "orderListId": f.order_list_id,
                "price": fmt(f.price),
                "qty": fmt(f.qty),
                "quoteQty": fmt(f.quote_qty),
                "commission": fmt(f.commission),
                "commissionAsset": f.commission_asset,
                "time": f.time,
                "isBuyer": f.side == Side.BUY,
                "isMaker": f.is_maker,
                "isBestMatch": True,
            }
            for f in fills
        ]

    async def new_oco(self, request: web.Request, params: Params, account_id: str | None) -> dict:
        symbol = params.symbol(self.state)
        side = params.text("side", required=True)
        if side not in Side.__members__:
            raise BinanceError(-1117, "Invalid side.")
        quantity = params.decimal("quantity", required=True)
        legs = [oco_leg(params, position) for position in ("above", "below")]
        list_client_id = checked_client_id(params, "listClientOrderId")
        engine = self.state.engine
        order_list = engine.place_oco(account_id, symbol, Side(side), quantity, legs[0], legs[1], list_client_id)
        self.state.mark_dirty()
        await self.state.faults.after_order(request)
        orders = [engine.orders[i] for i in order_list.order_ids]
        return {
            "orderListId": order_list.order_list_id,
            "contingencyType": "OCO",
            "listStatusType": "EXEC_STARTED" if order_list.status == "EXECUTING" else "ALL_DONE",
            "listOrderStatus": order_list.status,
            "listClientOrderId": order_list.list_client_order_id,
            "transactionTime": order_list.time,
            "symbol": symbol,
            "orders": [{"symbol": symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id} for o in orders],
            "orderReports": [order_response(o, "RESULT") for o in orders],
        }
