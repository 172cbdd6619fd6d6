"""Bitget spot adapter: prehash exactly as in Bitget's signature guide, base64 HMAC checked
independently by openssl, documented response shapes and error codes."""

from __future__ import annotations

import json
import subprocess
import time
from decimal import Decimal

import pytest

from core.exchanges.errors import (
    AuthError,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    RateLimited,
)
from core.exchanges.models import OcoRequest, OrderRequest
from core.exchanges.spot.bitget import BitgetSpot
from core.exchanges.spot.bitget_wire import prehash, sign
from tests.core.exchanges.conftest import FakeVenue, Recorded, Reply

SECRET = "bitget-test-secret"
KEY = "bg_0123456789abcdef"
PASSPHRASE = "pass-phrase"

SYMBOLS = {
    "code": "00000",
    "msg": "success",
    "requestTime": 1695808949356,
    "data": [
        {  # spot/market/Get-Symbols
            "symbol": "BTCUSDT",
            "baseCoin": "BTC",
            "quoteCoin": "USDT",
            "minTradeAmount": "0.0001",
            "maxTradeAmount": "10000",
            "takerFeeRate": "0.001",
            "makerFeeRate": "0.001",
            "pricePrecision": "4",
            "quantityPrecision": "8",
            "quotePrecision": "4",
            "minTradeUSDT": "5",
            "status": "online",
            "buyLimitPriceRatio": "0.05",
            "sellLimitPriceRatio": "0.05",
            "orderQuantity": "100",
            "areaSymbol": "no",
        }
    ],
}
ORDER_INFO = {
    "code": "00000",
    "msg": "success",
    "requestTime": 1695865476577,
    "data": [
        {  # spot/trade/Get-Order-Info
            "userId": "**********",
            "symbol": "BTCUSDT",
            "orderId": "121211212122",
            "clientOid": "121211212122",
            "price": "0",
            "size": "10.0000000000000000",
            "orderType": "market",
            "side": "buy",
            "status": "filled",
            "priceAvg": "13000.0000000000000000",
            "baseVolume": "0.0007000000000000",
            "quoteVolume": "9.1000000000000000",
            "enterPointSource": "API",
            "feeDetail": "{}",
            "orderSource": "market",
            "cancelReason": "",
            "cTime": "1695865232127",
            "uTime": "1695865233051",
        }
    ],
}


def ok(data: object) -> dict:
    return {"code": "00000", "msg": "success", "requestTime": 1695806875837, "data": data}


def openssl_b64_hmac(secret: str, message: str) -> str:
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", secret, "-binary"],
        input=message.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return subprocess.run(["base64", "-w0"], input=digest, capture_output=True, check=True).stdout.decode()


def verify(request: Recorded) -> bool:
    query = request.query
    message = prehash(request.headers["ACCESS-TIMESTAMP"], request.method, request.path, query, request.body.decode())
    return (
        request.headers["ACCESS-SIGN"] == openssl_b64_hmac(SECRET, message)
        and request.headers["ACCESS-KEY"] == KEY
        and request.headers["ACCESS-PASSPHRASE"] == PASSPHRASE
    )


@pytest.fixture
def exchange(venue: FakeVenue, sleeps) -> BitgetSpot:
    venue.on("GET", "/api/v2/public/time", lambda _r: Reply(body=ok({"serverTime": str(int(time.time() * 1000))})))
    venue.json("GET", "/api/v2/spot/public/symbols", SYMBOLS)
    return BitgetSpot(
        api_key=KEY, api_secret=SECRET, passphrase=PASSPHRASE, base_url=venue.url, timeout=1.0, sleep=sleeps
    )


def test_prehash_matches_the_documented_examples():
    # common/signature: "16273667805456GET/api/mix/v2/market/depth?limit=20&symbol=BTCUSDT"
    assert (
        prehash("16273667805456", "get", "/api/mix/v2/market/depth", "limit=20&symbol=BTCUSDT", "")
        == "16273667805456GET/api/mix/v2/market/depth?limit=20&symbol=BTCUSDT"
    )
    body = '{"productType":"usdt-futures","symbol":"BTCUSDT","size":"8","marginMode":"crossed","side":"buy"}'
    assert (
        prehash("16273667805456", "POST", "/api/v2/mix/order/place-order", "", body)
        == "16273667805456POST/api/v2/mix/order/place-order" + body
    )


def test_signature_is_base64_hmac_sha256_as_openssl_computes_it():
    message = "16273667805456GET/api/mix/v2/market/depth?limit=20&symbol=BTCUSDT"
    assert sign(SECRET, message) == openssl_b64_hmac(SECRET, message)


def test_orders_on_the_wire_are_signed_over_exact_bytes(exchange, venue):
    venue.json("POST", "/api/v2/spot/trade/place-order", ok({"orderId": "121211212122", "clientOid": "ab-3"}))
    venue.json("GET", "/api/v2/spot/trade/orderInfo", ORDER_INFO)
    order = exchange.place_order(
        OrderRequest(
            client_order_id="ab-3",
            symbol="BTCUSDT",
            side="buy",
            type="limit",
            quantity=Decimal("0.0012345678"),
            price=Decimal("26000.12345"),
        )
    )
    assert order.venue_order_id == "121211212122" and order.status == "open"
    exchange.get_order("BTCUSDT", client_order_id="ab-3")
    post, get = (
        venue.calls("POST", "/api/v2/spot/trade/place-order")[0],
        venue.calls("GET", "/api/v2/spot/trade/orderInfo")[0],
    )
    assert verify(post) and verify(get)
    assert json.loads(post.body) == {
        "symbol": "BTCUSDT",
        "side": "buy",
        "orderType": "limit",
        "force": "gtc",
        "price": "26000.1234",
        "size": "0.00123456",
        "clientOid": "ab-3",
    }
    assert get.query == "clientOid=ab-3"


def test_market_buy_must_be_sized_in_quote(exchange, venue):
    with pytest.raises(InvalidOrder, match="quote currency"):
        exchange.place_order(
            OrderRequest(client_order_id="ab-4", symbol="BTCUSDT", side="buy", type="market", quantity=Decimal("0.01"))
        )
    venue.json("POST", "/api/v2/spot/trade/place-order", ok({"orderId": "1", "clientOid": "ab-4"}))
    exchange.place_order(
        OrderRequest(client_order_id="ab-4", symbol="BTCUSDT", side="buy", type="market", quote_quantity=Decimal("10"))
    )
    assert json.loads(venue.calls("POST", "/api/v2/spot/trade/place-order")[0].body)["size"] == "10"


def test_documented_shapes(exchange, venue):
    rules = exchange.rules("BTCUSDT")
    assert (rules.tick_size, rules.step_size, rules.min_qty, rules.min_notional) == (
        Decimal("0.0001"),
        Decimal("1E-8"),
        Decimal("0.0001"),
        Decimal("5"),
    )
    venue.json("GET", "/api/v2/spot/trade/orderInfo", ORDER_INFO)
    order = exchange.get_order("BTCUSDT", venue_order_id="121211212122")
    assert (order.status, order.filled_qty, order.avg_price, order.quantity) == (
        "filled",
        Decimal("0.0007"),
        Decimal("13000"),
        None,
    )  # market buy size is quote, not base
    venue.json(
        "GET",
        "/api/v2/spot/account/assets",
        ok(
            [
                {
                    "coin": "USDT",
                    "available": "1000.5",
                    "frozen": "10",
                    "locked": "2",
                    "limitAvailable": "0",
                    "uTime": "1622697148",
                }
            ]
        ),
    )
    assert exchange.balances()["USDT"].total == Decimal("1012.5")
    venue.json(
        "GET",
        "/api/v2/spot/trade/fills",
        ok(
            [
                {
                    "userId": "**",
                    "symbol": "BTCUSDT",
                    "orderId": "12345678910",
                    "tradeId": "12345678910",
                    "orderType": "limit",
                    "side": "buy",
                    "priceAvg": "13000",
                    "size": "0.0007",
                    "amount": "9.1",
                    "feeDetail": {
                        "deduction": "no",
                        "feeCoin": "BTC",
                        "totalDeductionFee": "",
                        "totalFee": "-0.0000007",
                    },
                    "tradeScope": "taker",
                    "cTime": "1695865232127",
                    "uTime": "1695865233051",
                }
            ]
        ),
    )
    [fill] = exchange.trades("BTCUSDT")
    assert (fill.fee, fill.fee_asset, fill.qty) == (Decimal("0.0000007"), "BTC", Decimal("0.0007"))
    venue.json(
        "GET",
        "/api/v2/spot/market/candles",
        ok([["1695835800000", "26210.5", "26210.5", "26194.5", "26194.5", "26.26", "687897.63", "687897.63"]]),
    )
    [kline] = exchange.klines("BTCUSDT", "1m")
    assert kline.low == Decimal("26194.5")
    assert venue.calls("GET", "/api/v2/spot/market/candles")[0].params["granularity"] == "1min"


@pytest.mark.parametrize(
    ("code", "msg", "error"),
    [
        ("40037", "Apikey does not exist", AuthError),
        ("40009", "sign signature error", AuthError),
        ("43012", "Insufficient balance", InsufficientFunds),
        ("43001", "The order does not exist", OrderNotFound),
        ("40808", "Parameter verification exception size checkScale error", InvalidOrder),
        ("429", "Too Many Requests", RateLimited),
    ],
)
def test_error_codes_map_to_taxonomy(exchange, venue, code, msg, error):
    venue.json("GET", "/api/v2/spot/trade/unfilled-orders", {"code": code, "msg": msg, "requestTime": 1}, status=400)
    with pytest.raises(error) as caught:
        exchange.open_orders("BTCUSDT")
    assert (caught.value.code, caught.value.message) == (code, msg)


# ---- plan (trigger) orders: stop-loss and take-profit ---------------------------------------------
# Shapes from bitget.com/api-doc spot/plan/{Place-Plan-Order, Cancel-Plan-Order, Get-Current-Plan-Order,
# Get-History-Plan-Order, Get-Plan-Sub-Order} (stored copies, several mirrors agree). The doc examples
# sign nothing (ACCESS-SIGN "*"), so signing is proven with the common/signature examples above and
# openssl over the exact bytes sent here.

PLAN = "/api/v2/spot/trade/place-plan-order"
CANCEL_PLAN = "/api/v2/spot/trade/cancel-plan-order"
CURRENT_PLANS = "/api/v2/spot/trade/current-plan-order"
HISTORY_PLANS = "/api/v2/spot/trade/history-plan-order"
SUB_ORDERS = "/api/v2/spot/trade/plan-sub-order"
ORDER_INFO_PATH = "/api/v2/spot/trade/orderInfo"


def plan_row(**over: object) -> dict:
    """One orderList entry of Get-Current-Plan-Order / Get-History-Plan-Order, as documented."""
    row = {
        "orderId": "121211212122",
        "clientOid": "ab-30",
        "symbol": "BTCUSDT",
        "size": "0.5",
        "executePrice": "0",
        "triggerPrice": "25000",
        "status": "live",
        "orderType": "market",
        "side": "sell",
        "planType": "amount",
        "triggerType": "fill_price",
        "enterPointSource": "API",
        "uTime": "1668134576563",
        "cTime": "1668134576563",
    }
    return row | over


def plan_list(*rows: dict, next_flag: bool = False, cursor: str = "1") -> dict:
    return ok({"nextFlag": next_flag, "idLessThan": cursor, "orderList": list(rows)})


def spot_order(**over: object) -> dict:
    return ORDER_INFO["data"][0] | over


def no_order(_request: Recorded) -> Reply:
    return Reply(status=400, body={"code": "43001", "msg": "The order does not exist", "requestTime": 1})


@pytest.mark.parametrize(
    ("kind", "limit", "body"),
    [
        ("stop_loss", None, {"orderType": "market", "triggerPrice": "25000"}),
        ("take_profit", None, {"orderType": "market", "triggerPrice": "31000"}),
        (
            "stop_loss_limit",
            "24900",
            {"orderType": "limit", "triggerPrice": "25000", "executePrice": "24900", "force": "gtc"},
        ),
        (
            "take_profit_limit",
            "30900",
            {"orderType": "limit", "triggerPrice": "31000", "executePrice": "30900", "force": "gtc"},
        ),
    ],
)
def test_stops_and_take_profits_are_signed_plan_orders(exchange, venue, kind, limit, body):
    venue.json("POST", PLAN, ok({"orderId": "121211212122", "clientOid": "ab-30"}))
    trigger = "25000" if kind.startswith("stop") else "31000"
    order = exchange.place_order(
        OrderRequest(
            client_order_id="ab-30",
            symbol="BTCUSDT",
            side="sell",
            type=kind,
            quantity=Decimal("0.123456789"),
            stop_price=Decimal(trigger),
            price=Decimal(limit) if limit else None,
        )
    )
    assert (order.venue_order_id, order.type, order.status) == ("121211212122", kind, "open")
    [sent] = venue.calls("POST", PLAN)
    assert verify(sent)
    assert json.loads(sent.body) == {
        "symbol": "BTCUSDT",
        "side": "sell",
        "size": "0.12345678",
        "triggerType": "fill_price",
        "planType": "amount",
        "clientOid": "ab-30",
        **body,
    }
    assert venue.calls("POST", "/api/v2/spot/trade/place-order") == []


def test_a_market_stop_buy_is_sized_in_base_coin(exchange, venue):
    # planType=amount: `size` is base coin for buys too, unlike a plain market buy.
    venue.json("POST", PLAN, ok({"orderId": "1", "clientOid": "ab-31"}))
    exchange.place_order(
        OrderRequest(
            client_order_id="ab-31",
            symbol="BTCUSDT",
            side="buy",
            type="stop_loss",
            quantity=Decimal("0.01"),
            stop_price=Decimal("30000"),
        )
    )
    sent = json.loads(venue.calls("POST", PLAN)[0].body)
    assert (sent["size"], sent["planType"], sent["side"]) == ("0.01", "amount", "buy")


def test_plan_order_found_by_client_id_in_the_current_plans_across_pages(exchange, venue):
    venue.json("GET", ORDER_INFO_PATH, ok([]))
    venue.on(
        "GET",
        CURRENT_PLANS,
        lambda r: Reply(
            body=plan_list(plan_row(orderId="9", clientOid="ab-other"), next_flag=True, cursor="9")
            if "idLessThan" not in r.params
            else plan_list(plan_row(orderId="8", clientOid="ab-30"))
        ),
    )
    order = exchange.get_order("BTCUSDT", client_order_id="ab-30")
    assert (order.venue_order_id, order.client_order_id, order.status, order.type) == (
        "8",
        "ab-30",
        "open",
        "trigger_market",
    )
    assert (order.quantity, order.filled_qty, order.price) == (Decimal("0.5"), Decimal(0), None)
    first, second = venue.calls("GET", CURRENT_PLANS)
    assert verify(first) and verify(second)
    assert (first.params, second.params) == (
        {"symbol": "BTCUSDT", "limit": "100"},
        {"symbol": "BTCUSDT", "limit": "100", "idLessThan": "9"},
    )
    assert venue.calls("GET", HISTORY_PLANS) == []


def test_fired_plan_order_reports_the_fills_of_its_spot_sub_order(exchange, venue):
    def order_info(request: Recorded) -> Reply:
        if request.params.get("orderId") == "777":
            return Reply(
                body=ok(
                    [
                        spot_order(
                            orderId="777",
                            clientOid="",
                            orderType="market",
                            side="sell",
                            size="0.5",
                            status="filled",
                            baseVolume="0.5",
                            priceAvg="24990",
                        )
                    ]
                )
            )
        return no_order(request)

    venue.on("GET", ORDER_INFO_PATH, order_info)
    venue.json("GET", CURRENT_PLANS, plan_list())
    venue.json("GET", HISTORY_PLANS, plan_list(plan_row(status="executed")))
    venue.json("GET", SUB_ORDERS, ok([{"orderId": "777", "price": "0", "type": "market", "status": "success"}]))
    order = exchange.get_order("BTCUSDT", client_order_id="ab-30")
    assert (order.venue_order_id, order.client_order_id, order.status) == ("121211212122", "ab-30", "filled")
    assert (order.filled_qty, order.avg_price) == (Decimal("0.5"), Decimal("24990"))
    assert venue.calls("GET", SUB_ORDERS)[0].params == {"planOrderId": "121211212122"}
    history = venue.calls("GET", HISTORY_PLANS)[0].params
    window_days = (int(history["endTime"]) - int(history["startTime"])) / 86_400_000
    assert 0 < window_days < 90 and abs(int(history["endTime"]) - time.time() * 1000) < 5000


@pytest.mark.parametrize(
    ("status", "subs", "expected"),
    [
        ("cancel", [], "cancelled"),  # Get-History-Plan-Order (zh) example spells it "cancel"
        ("cancelled", [], "cancelled"),
        ("fail_execute", [], "rejected"),
        ("executed", [{"orderId": "", "price": "0", "type": "market", "status": "fail"}], "rejected"),
        ("executed", [], "open"),  # fired, spot order not placed yet
    ],
)
def test_plan_order_states(exchange, venue, status, subs, expected):
    venue.json("GET", ORDER_INFO_PATH, ok([]))
    venue.json("GET", CURRENT_PLANS, plan_list())
    venue.json("GET", HISTORY_PLANS, plan_list(plan_row(status=status)))
    venue.json("GET", SUB_ORDERS, ok(subs))
    assert exchange.get_order("BTCUSDT", client_order_id="ab-30").status == expected


def test_unknown_plan_status_is_malformed_not_guessed(exchange, venue):
    venue.json("GET", ORDER_INFO_PATH, ok([]))
    venue.json("GET", CURRENT_PLANS, plan_list(plan_row(status="mystery")))
    with pytest.raises(MalformedResponse, match="unknown plan order status 'mystery'"):
        exchange.get_order("BTCUSDT", client_order_id="ab-30")


def test_an_order_nowhere_is_not_found_after_orders_current_and_history(exchange, venue):
    venue.on("GET", ORDER_INFO_PATH, no_order)
    venue.json("GET", CURRENT_PLANS, plan_list(plan_row(clientOid="ab-else")))
    venue.json("GET", HISTORY_PLANS, plan_list(plan_row(clientOid="ab-else", status="cancelled")))
    with pytest.raises(OrderNotFound, match="no order ab-404 on BTCUSDT"):
        exchange.get_order("BTCUSDT", client_order_id="ab-404")
    assert [len(venue.calls("GET", p)) for p in (ORDER_INFO_PATH, CURRENT_PLANS, HISTORY_PLANS)] == [1, 1, 1]


def test_cancel_of_an_untriggered_plan_order_uses_cancel_plan_order(exchange, venue):
    venue.json("GET", ORDER_INFO_PATH, ok([]))
    venue.json("GET", CURRENT_PLANS, plan_list(plan_row()))
    venue.json("POST", CANCEL_PLAN, ok({"result": "success"}))
    cancelled = exchange.cancel_order("BTCUSDT", client_order_id="ab-30")
    assert (cancelled.status, cancelled.client_order_id) == ("cancelled", "ab-30")
    [sent] = venue.calls("POST", CANCEL_PLAN)
    assert verify(sent) and json.loads(sent.body) == {"orderId": "121211212122"}
    assert venue.calls("POST", "/api/v2/spot/trade/cancel-order") == []


def test_cancel_plan_order_answer_other_than_success_is_an_error(exchange, venue):
    venue.json("GET", ORDER_INFO_PATH, ok([]))
    venue.json("GET", CURRENT_PLANS, plan_list(plan_row()))
    venue.json("POST", CANCEL_PLAN, ok({"result": "failure"}))
    with pytest.raises(ExchangeError, match="not cancelled: 'failure'"):
        exchange.cancel_order("BTCUSDT", client_order_id="ab-30")


def test_cancel_of_a_fired_plan_cancels_its_open_spot_sub_order(exchange, venue):
    cancelled = []

    def order_info(request: Recorded) -> Reply:
        if request.params.get("orderId") == "777":
            status = "cancelled" if cancelled else "live"
            return Reply(
                body=ok(
                    [
                        spot_order(
                            orderId="777",
                            clientOid="",
                            orderType="limit",
                            side="sell",
                            price="24900",
                            size="0.5",
                            status=status,
                            baseVolume="0.1",
                            priceAvg="24900",
                        )
                    ]
                )
            )
        return no_order(request)

    venue.on("GET", ORDER_INFO_PATH, order_info)
    venue.json("GET", CURRENT_PLANS, plan_list())
    venue.json("GET", HISTORY_PLANS, plan_list(plan_row(status="executed", orderType="limit", executePrice="24900")))
    venue.json("GET", SUB_ORDERS, ok([{"orderId": "777", "price": "24900", "type": "limit", "status": "success"}]))
    venue.on(
        "POST",
        "/api/v2/spot/trade/cancel-order",
        lambda _r: cancelled.append(1) or Reply(body=ok({"orderId": "777", "clientOid": ""})),
    )
    order = exchange.cancel_order("BTCUSDT", client_order_id="ab-30")
    assert (order.status, order.filled_qty, order.client_order_id, order.price) == (
        "cancelled",
        Decimal("0.1"),
        "ab-30",
        Decimal("24900"),
    )
    [sent] = venue.calls("POST", "/api/v2/spot/trade/cancel-order")
    assert json.loads(sent.body) == {"symbol": "BTCUSDT", "orderId": "777"}
    assert venue.calls("POST", CANCEL_PLAN) == []


def test_cancel_of_a_spot_order_and_of_a_final_order(exchange, venue):
    state = {"status": "live"}
    venue.on(
        "GET",
        ORDER_INFO_PATH,
        lambda _r: Reply(
            body=ok(
                [
                    spot_order(
                        clientOid="ab-3",
                        orderType="limit",
                        price="26000",
                        size="0.01",
                        status=state["status"],
                        baseVolume="0",
                    )
                ]
            )
        ),
    )
    venue.on(
        "POST",
        "/api/v2/spot/trade/cancel-order",
        lambda _r: state.update(status="cancelled") or Reply(body=ok({"orderId": "121211212122"})),
    )
    assert exchange.cancel_order("BTCUSDT", client_order_id="ab-3").status == "cancelled"
    assert json.loads(venue.calls("POST", "/api/v2/spot/trade/cancel-order")[0].body) == {
        "symbol": "BTCUSDT",
        "orderId": "121211212122",
    }
    # Cancelling again (a retried task) reports the final order instead of failing or resending.
    assert exchange.cancel_order("BTCUSDT", client_order_id="ab-3").status == "cancelled"
    assert len(venue.calls("POST", "/api/v2/spot/trade/cancel-order")) == 1
    assert venue.calls("GET", CURRENT_PLANS) == []


def test_open_orders_include_untriggered_plan_orders(exchange, venue):
    venue.json(
        "GET",
        "/api/v2/spot/trade/unfilled-orders",
        ok(
            [spot_order(clientOid="ab-3", orderType="limit", price="26000", size="0.01", status="live", baseVolume="0")]
        ),
    )
    venue.json("GET", CURRENT_PLANS, plan_list(plan_row(clientOid="ab-30", orderType="limit", executePrice="24900")))
    orders = exchange.open_orders("BTCUSDT")
    assert [(o.client_order_id, o.type, o.status, o.price) for o in orders] == [
        ("ab-3", "limit", "open", Decimal("26000")),
        ("ab-30", "trigger_limit", "open", Decimal("24900")),
    ]


def test_unknown_outcome_of_a_plan_order_is_looked_up_not_resent(exchange, venue):
    venue.on("POST", PLAN, Reply(status=502, body="<html>bad gateway</html>"))
    venue.json("GET", ORDER_INFO_PATH, ok([]))
    venue.json("GET", CURRENT_PLANS, plan_list(plan_row()))
    order = exchange.place_order(
        OrderRequest(
            client_order_id="ab-30",
            symbol="BTCUSDT",
            side="sell",
            type="stop_loss",
            quantity=Decimal("0.5"),
            stop_price=Decimal("25000"),
        )
    )
    assert (order.venue_order_id, order.status) == ("121211212122", "open")
    assert len(venue.calls("POST", PLAN)) == 1


@pytest.mark.parametrize(
    ("code", "msg", "error"),
    [
        ("43012", "Insufficient balance", InsufficientFunds),
        ("40808", "Parameter verification exception size checkScale error", InvalidOrder),
        ("40009", "sign signature error", AuthError),
    ],
)
def test_plan_order_refusals_map_to_taxonomy(exchange, venue, code, msg, error):
    venue.json("POST", PLAN, {"code": code, "msg": msg, "requestTime": 1}, status=400)
    with pytest.raises(error) as caught:
        exchange.place_order(
            OrderRequest(
                client_order_id="ab-32",
                symbol="BTCUSDT",
                side="sell",
                type="stop_loss",
                quantity=Decimal("0.5"),
                stop_price=Decimal("25000"),
            )
        )
    assert (caught.value.code, caught.value.message) == (code, msg)
    assert len(venue.calls("POST", PLAN)) == 1


# ---- emulated OCO: a limit take-profit and a plan-order stop, cancel-on-fill ----------------------


def sell_oco(**over: object) -> OcoRequest:
    fields = {
        "client_order_id": "ab-9",
        "symbol": "BTCUSDT",
        "side": "sell",
        "quantity": Decimal("0.5"),
        "limit_price": Decimal("32000"),
        "stop_price": Decimal("25000"),
    } | over
    return OcoRequest(**fields)


def test_emulated_oco_places_a_plan_stop_and_a_limit_then_cancels_the_stop_on_fill(exchange, venue):
    venue.json("POST", PLAN, ok({"orderId": "500", "clientOid": "ab-9-sl"}))
    venue.json("POST", "/api/v2/spot/trade/place-order", ok({"orderId": "600", "clientOid": "ab-9-tp"}))
    oco = exchange.place_oco(sell_oco())
    assert oco.emulated and [o.client_order_id for o in oco.orders] == ["ab-9-tp", "ab-9-sl"]
    assert json.loads(venue.calls("POST", PLAN)[0].body)["triggerPrice"] == "25000"
    assert json.loads(venue.calls("POST", "/api/v2/spot/trade/place-order")[0].body)["price"] == "32000"

    # The take-profit filled; the stop has not fired: settling cancels the stop plan order.
    def order_info(request: Recorded) -> Reply:
        if request.params.get("clientOid") == "ab-9-tp":
            return Reply(
                body=ok(
                    [
                        spot_order(
                            orderId="600",
                            clientOid="ab-9-tp",
                            orderType="limit",
                            side="sell",
                            price="32000",
                            size="0.5",
                            status="filled",
                            baseVolume="0.5",
                            priceAvg="32000",
                        )
                    ]
                )
            )
        return Reply(body=ok([]))

    venue.on("GET", ORDER_INFO_PATH, order_info)
    venue.on(
        "GET",
        CURRENT_PLANS,
        lambda _r: Reply(
            body=plan_list()
            if venue.calls("POST", CANCEL_PLAN)
            else plan_list(plan_row(orderId="500", clientOid="ab-9-sl"))
        ),
    )
    venue.json("POST", CANCEL_PLAN, ok({"result": "success"}))
    settled = exchange.settle_emulated_oco(oco)
    assert [(o.client_order_id, o.status) for o in settled.orders] == [("ab-9-tp", "filled"), ("ab-9-sl", "cancelled")]
    assert json.loads(venue.calls("POST", CANCEL_PLAN)[0].body) == {"orderId": "500"}


def test_emulated_oco_whose_take_profit_is_refused_cancels_the_stop(exchange, venue):
    venue.json("POST", PLAN, ok({"orderId": "500", "clientOid": "ab-9-sl"}))
    venue.json(
        "POST",
        "/api/v2/spot/trade/place-order",
        {"code": "43012", "msg": "Insufficient balance", "requestTime": 1},
        status=400,
    )
    venue.json("GET", ORDER_INFO_PATH, ok([]))
    venue.json("GET", CURRENT_PLANS, plan_list(plan_row(orderId="500", clientOid="ab-9-sl")))
    venue.json("POST", CANCEL_PLAN, ok({"result": "success"}))
    with pytest.raises(InsufficientFunds):
        exchange.place_oco(sell_oco())
    assert json.loads(venue.calls("POST", CANCEL_PLAN)[0].body) == {"orderId": "500"}


def test_a_trailing_stop_is_refused_on_bitget_spot_before_sending(exchange, venue):
    # Bitget's spot plan orders (place-plan-order) trigger at a fixed triggerPrice; no trailing form is documented.
    with pytest.raises(InvalidOrder, match="has no trailing stop at this venue"):
        exchange.place_order(
            OrderRequest(
                client_order_id="ab-5",
                symbol="BTCUSDT",
                side="sell",
                type="trailing_stop",
                quantity=Decimal("0.01"),
                trail_pct=Decimal("2"),
            )
        )
    assert venue.calls("POST", "/api/v2/spot/trade/place-plan-order") == []
