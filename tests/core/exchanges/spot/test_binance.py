"""Binance spot adapter: signatures against Binance's own published examples, documented response
shapes, and every bad input mapped onto the error taxonomy — over real HTTP to a local venue."""

from __future__ import annotations

import hashlib
import hmac
import time
from decimal import Decimal

import pytest

from core.exchanges.errors import (
    AuthError,
    InsufficientFunds,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    RateLimited,
    Unavailable,
)
from core.exchanges.models import OcoRequest, OrderRequest
from core.exchanges.spot.binance import BinanceSpot, sign, signed_query
from tests.core.exchanges.conftest import FakeVenue, Recorded, Reply

# From rest-api.md "SIGNED Endpoint Examples for POST /api/v3/order - HMAC Keys" (not real credentials).
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PARAMS = [
    ("symbol", "LTCBTC"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("timeInForce", "GTC"),
    ("quantity", "1"),
    ("price", "0.1"),
    ("recvWindow", "5000"),
    ("timestamp", "1499827319559"),
]

EXCHANGE_INFO = {  # shape of GET /api/v3/exchangeInfo in rest-api.md, one symbol
    "timezone": "UTC",
    "serverTime": 1565246363776,
    "rateLimits": [],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "ETHBTC",
            "status": "TRADING",
            "baseAsset": "ETH",
            "baseAssetPrecision": 8,
            "quoteAsset": "BTC",
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": True,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.00000100",
                    "maxPrice": "100000.00000000",
                    "tickSize": "0.00000100",
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.00100000",
                    "maxQty": "100000.00000000",
                    "stepSize": "0.00100000",
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "0.00010000",
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        }
    ],
}


def order_result(**over: object) -> dict:
    """POST /api/v3/order with newOrderRespType=RESULT, as documented."""
    base = {
        "symbol": "ETHBTC",
        "orderId": 28,
        "orderListId": -1,
        "clientOrderId": "ab-1",
        "transactTime": 1507725176595,
        "price": "0.05000000",
        "origQty": "1.00000000",
        "executedQty": "0.00000000",
        "origQuoteOrderQty": "0.000000",
        "cummulativeQuoteQty": "0.00000000",
        "status": "NEW",
        "timeInForce": "GTC",
        "type": "LIMIT",
        "side": "BUY",
        "workingTime": 1507725176595,
        "selfTradePreventionMode": "NONE",
    }
    return base | over


def verify_signature(request: Recorded) -> bool:
    query, _, signature = request.query.rpartition("&signature=")
    expected = hmac.new(DOC_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    return signature == expected and request.headers.get("X-MBX-APIKEY") == DOC_KEY


@pytest.fixture
def exchange(venue: FakeVenue, sleeps) -> BinanceSpot:
    venue.on("GET", "/api/v3/time", lambda _r: Reply(body={"serverTime": int(time.time() * 1000) + 1500}))
    venue.json("GET", "/api/v3/exchangeInfo", EXCHANGE_INFO)
    return BinanceSpot(api_key=DOC_KEY, api_secret=DOC_SECRET, base_url=venue.url, timeout=1.0, sleep=sleeps)


def limit_buy(cid: str = "ab-1", qty: str = "1", price: str = "0.05") -> OrderRequest:
    return OrderRequest(
        client_order_id=cid, symbol="ETHBTC", side="buy", type="limit", quantity=Decimal(qty), price=Decimal(price)
    )


# ---- signatures: Binance's published examples --------------------------------------------------


def test_signature_of_documented_query_string_example():
    assert signed_query(DOC_SECRET, DOC_PARAMS).endswith(
        "&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )


def test_signature_of_documented_unicode_example_percent_encodes_before_signing():
    params = [("symbol", "１２３４５６")] + DOC_PARAMS[1:]
    query = signed_query(DOC_SECRET, params)
    assert query.startswith("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY")
    assert query.endswith("&signature=e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3")


def test_signature_of_documented_mixed_query_and_body_example():
    payload = (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
        + "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    )
    assert sign(DOC_SECRET, payload) == "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"


def test_order_on_the_wire_is_signed_in_sent_order_with_venue_time(exchange, venue):
    venue.json("POST", "/api/v3/order", order_result())
    exchange.place_order(
        OrderRequest(
            client_order_id="ab-1",
            symbol="ETHBTC",
            side="buy",
            type="limit",
            quantity=Decimal("1"),
            price=Decimal("0.05"),
        )
    )
    [sent] = venue.calls("POST", "/api/v3/order")
    assert verify_signature(sent)
    assert sent.query.startswith(
        "symbol=ETHBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.05&"
        "newClientOrderId=ab-1&newOrderRespType=FULL&recvWindow=5000&timestamp="
    )
    # The venue's clock runs 1.5 s ahead; the timestamp follows the measured offset, not our clock.
    assert abs(int(sent.params["timestamp"]) - (time.time() * 1000 + 1500)) < 400


# ---- documented response shapes ----------------------------------------------------------------


def test_symbol_rules_from_exchange_info(exchange):
    rules = exchange.rules("ETHBTC")
    assert (rules.base, rules.quote) == ("ETH", "BTC")
    assert rules.tick_size == Decimal("0.000001") and rules.step_size == Decimal("0.001")
    assert rules.min_qty == Decimal("0.001") and rules.min_notional == Decimal("0.0001")
    assert rules.oco_allowed and rules.trading
    assert rules.order_types == {"market", "limit", "stop_loss", "stop_loss_limit", "take_profit", "take_profit_limit"}


def test_balances_trades_and_klines_parse_documented_shapes(exchange, venue):
    venue.json(
        "GET",
        "/api/v3/account",
        {
            "makerCommission": 15,
            "takerCommission": 15,
            "canTrade": True,
            "accountType": "SPOT",
            "balances": [
                {"asset": "BTC", "free": "4723846.89208129", "locked": "0.00000000"},
                {"asset": "LTC", "free": "4763368.68006011", "locked": "1.5"},
            ],
            "permissions": ["SPOT"],
        },
    )
    venue.json(
        "GET",
        "/api/v3/myTrades",
        [
            {
                "symbol": "BNBBTC",
                "id": 28457,
                "orderId": 100234,
                "orderListId": -1,
                "price": "4.00000100",
                "qty": "12.00000000",
                "quoteQty": "48.000012",
                "commission": "10.10000000",
                "commissionAsset": "BNB",
                "time": 1499865549590,
                "isBuyer": True,
                "isMaker": False,
                "isBestMatch": True,
            }
        ],
    )
    venue.json(
        "GET",
        "/api/v3/klines",
        [
            [
                1499040000000,
                "0.01634790",
                "0.80000000",
                "0.01575800",
                "0.01577100",
                "148976.11427815",
                1499644799999,
                "2434.19055334",
                308,
                "1756.87402397",
                "28.46694368",
                "0",
            ]
        ],
    )
    balances = exchange.balances()
    assert balances["LTC"].total == Decimal("4763370.18006011")
    [trade] = exchange.trades("BNBBTC")
    assert (trade.trade_id, trade.order_id, trade.side) == ("28457", "100234", "buy")
    assert trade.price * trade.qty == Decimal("48.00001200000000")
    assert (trade.fee, trade.fee_asset) == (Decimal("10.1"), "BNB")
    [kline] = exchange.klines("ETHBTC", "1h", limit=1)
    assert kline.open_time_ms == 1499040000000 and kline.high == Decimal("0.8")
    assert venue.calls("GET", "/api/v3/klines")[0].params == {"symbol": "ETHBTC", "interval": "1h", "limit": "1"}


def test_filled_order_reports_average_price(exchange, venue):
    venue.json(
        "GET", "/api/v3/order", order_result(status="PARTIALLY_FILLED", executedQty="0.4", cummulativeQuoteQty="0.0199")
    )
    order = exchange.get_order("ETHBTC", client_order_id="ab-1")
    assert order.status == "partially_filled"
    assert order.avg_price == Decimal("0.04975") and order.filled_qty == Decimal("0.4")
    assert venue.calls("GET", "/api/v3/order")[0].params["origClientOrderId"] == "ab-1"


def test_full_response_fills_become_the_orders_trades(exchange, venue):
    # The fills of the docs' FULL example (POST /api/v3/order, "Response FULL"), on this suite's symbol.
    fills = [
        {"price": p, "qty": q, "commission": c, "commissionAsset": "USDT", "tradeId": t}
        for p, q, c, t in (
            ("4000.00000000", "1.00000000", "4.00000000", 56),
            ("3999.00000000", "5.00000000", "19.99500000", 57),
            ("3998.00000000", "2.00000000", "7.99600000", 58),
            ("3997.00000000", "1.00000000", "3.99700000", 59),
            ("3995.00000000", "1.00000000", "3.99500000", 60),
        )
    ]
    venue.json(
        "POST",
        "/api/v3/order",
        order_result(
            symbol="ETHBTC",
            type="MARKET",
            status="FILLED",
            origQty="10.00000000",
            executedQty="10.00000000",
            cummulativeQuoteQty="39983.00000000",
            fills=fills,
        ),
    )
    order = exchange.place_order(
        OrderRequest(client_order_id="ab-1", symbol="ETHBTC", side="buy", type="market", quantity=Decimal("10"))
    )
    assert [t.trade_id for t in order.trades] == ["56", "57", "58", "59", "60"]
    assert sum(t.qty for t in order.trades) == order.filled_qty == Decimal("10")
    assert order.trades[1].price == Decimal("3999") and order.trades[1].fee == Decimal("19.995")
    assert {(t.order_id, t.side, t.fee_asset, t.time_ms) for t in order.trades} == {
        ("28", "buy", "USDT", 1507725176595)
    }


def test_native_oco_sends_both_legs_with_derived_client_ids(exchange, venue):
    venue.json(
        "POST",
        "/api/v3/orderList/oco",
        {
            "orderListId": 1,
            "contingencyType": "OCO",
            "listStatusType": "EXEC_STARTED",
            "listOrderStatus": "EXECUTING",
            "listClientOrderId": "ab-9",
            "transactionTime": 1712289389158,
            "symbol": "ETHBTC",
            "orders": [
                {"symbol": "ETHBTC", "orderId": 11, "clientOrderId": "ab-9-sl"},
                {"symbol": "ETHBTC", "orderId": 12, "clientOrderId": "ab-9-tp"},
            ],
            "orderReports": [
                order_result(
                    orderId=11, clientOrderId="ab-9-sl", type="STOP_LOSS", side="SELL", price="0", stopPrice="0.04"
                ),
                order_result(orderId=12, clientOrderId="ab-9-tp", type="LIMIT_MAKER", side="SELL", price="0.06"),
            ],
        },
    )
    result = exchange.place_oco(
        OcoRequest(
            client_order_id="ab-9",
            symbol="ETHBTC",
            side="sell",
            quantity=Decimal("1"),
            limit_price=Decimal("0.06"),
            stop_price=Decimal("0.04"),
        )
    )
    assert not result.emulated and result.venue_list_id == "1"
    assert {o.client_order_id for o in result.orders} == {"ab-9-sl", "ab-9-tp"}
    sent = venue.calls("POST", "/api/v3/orderList/oco")[0].params
    assert sent["aboveType"] == "LIMIT_MAKER" and sent["abovePrice"] == "0.06"
    assert sent["belowType"] == "STOP_LOSS" and sent["belowStopPrice"] == "0.04"
    assert sent["listClientOrderId"] == "ab-9" and sent["aboveClientOrderId"] == "ab-9-tp"


# ---- idempotent placement ----------------------------------------------------------------------


def test_unknown_outcome_is_looked_up_by_client_id_not_resent(exchange, venue):
    venue.on("POST", "/api/v3/order", Reply(status=502, body="<html>bad gateway</html>"))
    venue.json("GET", "/api/v3/order", order_result(status="NEW"))
    order = exchange.place_order(limit_buy())
    assert order.venue_order_id == "28" and order.status == "open"
    assert len(venue.calls("POST", "/api/v3/order")) == 1


def test_timeout_then_not_found_resends_with_the_same_client_id(exchange, venue):
    venue.on("POST", "/api/v3/order", Reply(body=order_result(), delay_s=1.5), Reply(body=order_result()))
    venue.json("GET", "/api/v3/order", {"code": -2013, "msg": "Order does not exist."}, status=400)
    order = exchange.place_order(limit_buy())
    posts = venue.calls("POST", "/api/v3/order")
    assert len(posts) == 2 and order.client_order_id == "ab-1"
    assert {p.params["newClientOrderId"] for p in posts} == {"ab-1"}


def test_venue_down_for_send_and_lookup_raises_unavailable(exchange, venue):
    venue.on("POST", "/api/v3/order", Reply(status=503, body=""))
    venue.on("GET", "/api/v3/order", Reply(status=503, body=""))
    with pytest.raises(Unavailable):
        exchange.place_order(limit_buy())
    assert len(venue.calls("POST", "/api/v3/order")) == 1  # never resent while the outcome is unknown


# ---- bad input -> taxonomy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, AuthError),
        (400, {"code": -1022, "msg": "Signature for this request is not valid."}, AuthError),
        (400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}, InsufficientFunds),
        (400, {"code": -1121, "msg": "Invalid symbol."}, InvalidOrder),
        (400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"}, InvalidOrder),
    ],
)
def test_venue_errors_map_to_taxonomy_keeping_code_and_message(exchange, venue, status, body, error):
    venue.json("POST", "/api/v3/order", body, status=status)
    with pytest.raises(error) as caught:
        exchange.place_order(limit_buy())
    assert caught.value.code == body["code"] and caught.value.message == body["msg"]
    assert str(caught.value) == f"binance: {body['msg']} (code {body['code']})"
    assert len(venue.calls("POST", "/api/v3/order")) == 1


def test_order_checked_against_rules_before_sending(exchange, venue):
    with pytest.raises(InvalidOrder, match="quantity 0.0001 rounds to 0 at the ETHBTC step 0.001"):
        exchange.place_order(limit_buy(qty="0.0001"))
    with pytest.raises(InvalidOrder, match="order value 0.00005 BTC is below the ETHBTC minimum notional 0.0001"):
        exchange.place_order(limit_buy(qty="0.001", price="0.05"))
    with pytest.raises(InvalidOrder, match="rounds to 0 at the ETHBTC tick 0.000001"):
        exchange.place_order(limit_buy(price="0.0000001"))
    with pytest.raises(InvalidOrder, match="unknown symbol 'NOPE'"):
        exchange.place_order(
            OrderRequest(client_order_id="ab-2", symbol="NOPE", side="buy", type="market", quantity=Decimal(1))
        )
    assert venue.calls("POST", "/api/v3/order") == []


def test_prices_and_quantities_are_rounded_onto_the_grid(exchange, venue):
    venue.json("POST", "/api/v3/order", order_result())
    exchange.place_order(limit_buy(qty="1.23456", price="0.0512349"))
    sent = venue.calls("POST", "/api/v3/order")[0].params
    assert (sent["quantity"], sent["price"]) == ("1.234", "0.051234")


def test_rate_limit_storm_honours_retry_after_then_gives_up(exchange, venue, sleeps):
    venue.on(
        "GET",
        "/api/v3/openOrders",
        Reply(status=429, body={"code": -1003, "msg": "Too many requests."}, headers={"Retry-After": "3"}),
    )
    with pytest.raises(RateLimited):
        exchange.open_orders("ETHBTC")
    assert len(venue.calls("GET", "/api/v3/openOrders")) == 1  # waited out Retry-After instead of hammering
    assert sum(sleeps.calls) >= 3 - 0.5


def test_rate_limited_then_served_after_a_real_wait(exchange, venue):
    venue.on(
        "GET",
        "/api/v3/openOrders",
        Reply(status=429, body={"code": -1003, "msg": "Too many requests."}, headers={"Retry-After": "0.3"}),
        Reply(body=[order_result()]),
    )
    really_sleeping = BinanceSpot(api_key=DOC_KEY, api_secret=DOC_SECRET, base_url=venue.url)
    started = time.monotonic()
    assert [o.client_order_id for o in really_sleeping.open_orders("ETHBTC")] == ["ab-1"]
    assert time.monotonic() - started >= 0.3
    assert len(venue.calls("GET", "/api/v3/openOrders")) == 2


def test_malformed_and_garbage_answers(exchange, venue):
    venue.on("GET", "/api/v3/openOrders", Reply(body="{not json"))
    with pytest.raises(MalformedResponse, match="not JSON"):
        exchange.open_orders()
    assert len(venue.calls("GET", "/api/v3/openOrders")) == 3  # a read is retried
    venue.json("GET", "/api/v3/order", {"symbol": "ETHBTC", "orderId": 1})
    with pytest.raises(MalformedResponse, match="lacks 'status'"):
        exchange.get_order("ETHBTC", venue_order_id="1")


def test_cancel_unknown_order_is_order_not_found(exchange, venue):
    venue.json("DELETE", "/api/v3/order", {"code": -2011, "msg": "Unknown order sent."}, status=400)
    with pytest.raises(OrderNotFound):
        exchange.cancel_order("ETHBTC", client_order_id="ab-404")


def test_unreachable_venue_is_unavailable_without_leaking_secrets(sleeps):
    exchange = BinanceSpot(api_key=DOC_KEY, api_secret=DOC_SECRET, base_url="http://127.0.0.1:9", sleep=sleeps)
    with pytest.raises(Unavailable) as caught:
        exchange.server_time_ms()
    assert DOC_SECRET not in str(caught.value) and DOC_KEY not in str(caught.value)
    assert DOC_SECRET not in repr(exchange) and DOC_KEY not in repr(exchange)


# ---- clock: -1021 re-syncs and resends once ------------------------------------------------------

TIMESTAMP_REFUSAL = {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}


def test_timestamp_refusal_resyncs_and_resends_once_with_the_same_client_id(exchange, venue):
    venue_ahead_ms = {"now": 1500}
    venue.on(
        "GET", "/api/v3/time", lambda _r: Reply(body={"serverTime": int(time.time() * 1000) + venue_ahead_ms["now"]})
    )

    def order_endpoint(request: Recorded) -> Reply:
        if len(venue.calls("POST", "/api/v3/order")) == 1:
            venue_ahead_ms["now"] = 20_000  # the venue's clock jumped after our last measurement
            return Reply(status=400, body=TIMESTAMP_REFUSAL)
        return Reply(body=order_result())

    venue.on("POST", "/api/v3/order", order_endpoint)
    order = exchange.place_order(limit_buy(cid="ab-21"))
    assert order.status == "open"
    first, second = venue.calls("POST", "/api/v3/order")
    assert verify_signature(first) and verify_signature(second)
    assert first.params["newClientOrderId"] == second.params["newClientOrderId"] == "ab-21"
    now_ms = time.time() * 1000
    # Within 5 s: the two offsets are 18.5 s apart, and a loaded machine may take seconds between the calls.
    assert abs(int(first.params["timestamp"]) - (now_ms + 1500)) < 5000
    assert abs(int(second.params["timestamp"]) - (now_ms + 20_000)) < 5000  # re-signed with the new offset
    assert venue.calls("GET", "/api/v3/order") == []  # not an unknown outcome: no lookup needed


def test_timestamp_refused_twice_is_an_auth_error_after_exactly_two_sends(exchange, venue):
    venue.json("POST", "/api/v3/order", TIMESTAMP_REFUSAL, status=400)
    with pytest.raises(AuthError) as caught:
        exchange.place_order(limit_buy(cid="ab-22"))
    assert (caught.value.code, caught.value.message) == (-1021, TIMESTAMP_REFUSAL["msg"])
    assert len(venue.calls("POST", "/api/v3/order")) == 2


def test_timestamp_refusal_on_a_read_is_resent_too(exchange, venue):
    venue.on("GET", "/api/v3/openOrders", Reply(status=400, body=TIMESTAMP_REFUSAL), Reply(body=[order_result()]))
    assert [o.client_order_id for o in exchange.open_orders("ETHBTC")] == ["ab-1"]
    assert len(venue.calls("GET", "/api/v3/openOrders")) == 2


# ---- trailing stops: trailingDelta in BIPS (faqs/trailing-stop-faq.md) ----------------------------


@pytest.fixture
def trailing_exchange(venue: FakeVenue, sleeps) -> BinanceSpot:
    info = {**EXCHANGE_INFO, "symbols": [{**EXCHANGE_INFO["symbols"][0], "allowTrailingStop": True}]}  # type: ignore[index]
    venue.on("GET", "/api/v3/time", lambda _r: Reply(body={"serverTime": int(time.time() * 1000)}))
    venue.json("GET", "/api/v3/exchangeInfo", info)
    return BinanceSpot(api_key=DOC_KEY, api_secret=DOC_SECRET, base_url=venue.url, timeout=1.0, sleep=sleeps)


def trailing_sell(activation: str | None = None, pct: str = "1") -> OrderRequest:
    return OrderRequest(
        client_order_id="ab-7",
        symbol="ETHBTC",
        side="sell",
        type="trailing_stop",
        quantity=Decimal("1"),
        trail_pct=Decimal(pct),
        stop_price=Decimal(activation) if activation else None,
    )


def test_trailing_stop_is_an_order_type_where_the_symbol_allows_it(trailing_exchange):
    assert "trailing_stop" in trailing_exchange.rules("ETHBTC").order_types


def test_without_allow_trailing_stop_there_is_no_trailing_stop(exchange):
    assert "trailing_stop" not in exchange.rules("ETHBTC").order_types


@pytest.mark.parametrize(
    ("activation", "expected"),
    [
        # The FAQ's example: a STOP_LOSS SELL with trailingDelta 100 triggers 1 % below the highest price.
        (None, "type=STOP_LOSS&quantity=1&trailingDelta=100&"),
        # With an activation price: a TAKE_PROFIT SELL whose stopPrice (above the market) starts the trail.
        ("0.06", "type=TAKE_PROFIT&quantity=1&stopPrice=0.06&trailingDelta=100&"),
    ],
)
def test_trailing_stop_on_the_wire(trailing_exchange, venue, activation, expected):
    venue.json(
        "POST", "/api/v3/order", order_result(clientOrderId="ab-7", type="STOP_LOSS", side="SELL", trailingDelta=100)
    )
    placed = trailing_exchange.place_order(trailing_sell(activation))
    assert (placed.type, placed.status) == ("trailing_stop", "open")
    [sent] = venue.calls("POST", "/api/v3/order")
    assert verify_signature(sent)
    assert sent.query.startswith(f"symbol=ETHBTC&side=SELL&{expected}newClientOrderId=ab-7&newOrderRespType=FULL&")


@pytest.mark.parametrize("pct", ["0.05", "25"])
def test_trailing_delta_outside_binances_range_is_refused_before_sending(trailing_exchange, venue, pct):
    with pytest.raises(InvalidOrder, match="trails by 0.1% to 20%"):
        trailing_exchange.place_order(trailing_sell(pct=pct))
    assert venue.calls("POST", "/api/v3/order") == []


def test_trailing_stop_refused_where_the_symbol_does_not_allow_it(exchange, venue):
    with pytest.raises(InvalidOrder, match="has no trailing stop at this venue"):
        exchange.place_order(trailing_sell())
    assert venue.calls("POST", "/api/v3/order") == []
