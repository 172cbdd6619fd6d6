"""Bitget spot adapter: prehash exactly as in Bitget's signature guide, base64 HMAC checked
independently by openssl, documented response shapes and error codes."""

from __future__ import annotations

import json
import subprocess
import time
from decimal import Decimal

import pytest

from core.exchanges.bitget import BitgetSpot, prehash, sign
from core.exchanges.errors import AuthError, InsufficientFunds, InvalidOrder, OrderNotFound, RateLimited
from core.exchanges.models import OrderRequest
from tests.core.exchanges.conftest import FakeVenue, Recorded, Reply

SECRET = "bitget-test-secret"
KEY = "bg_0123456789abcdef"
PASSPHRASE = "pass-phrase"

SYMBOLS = {"code": "00000", "msg": "success", "requestTime": 1695808949356, "data": [{  # spot/market/Get-Symbols
    "symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "minTradeAmount": "0.0001",
    "maxTradeAmount": "10000", "takerFeeRate": "0.001", "makerFeeRate": "0.001", "pricePrecision": "4",
    "quantityPrecision": "8", "quotePrecision": "4", "minTradeUSDT": "5", "status": "online",
    "buyLimitPriceRatio": "0.05", "sellLimitPriceRatio": "0.05", "orderQuantity": "100", "areaSymbol": "no"}]}
ORDER_INFO = {"code": "00000", "msg": "success", "requestTime": 1695865476577, "data": [{  # spot/trade/Get-Order-Info
    "userId": "**********", "symbol": "BTCUSDT", "orderId": "121211212122", "clientOid": "121211212122",
    "price": "0", "size": "10.0000000000000000", "orderType": "market", "side": "buy", "status": "filled",
    "priceAvg": "13000.0000000000000000", "baseVolume": "0.0007000000000000", "quoteVolume": "9.1000000000000000",
    "enterPointSource": "API", "feeDetail": "{}", "orderSource": "market", "cancelReason": "",
    "cTime": "1695865232127", "uTime": "1695865233051"}]}


def ok(data: object) -> dict:
    return {"code": "00000", "msg": "success", "requestTime": 1695806875837, "data": data}


def openssl_b64_hmac(secret: str, message: str) -> str:
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", secret, "-binary"], input=message.encode(),
                            capture_output=True, check=True).stdout
    return subprocess.run(["base64", "-w0"], input=digest, capture_output=True, check=True).stdout.decode()


def verify(request: Recorded) -> bool:
    query = request.query
    message = prehash(request.headers["ACCESS-TIMESTAMP"], request.method, request.path, query, request.body.decode())
    return request.headers["ACCESS-SIGN"] == openssl_b64_hmac(SECRET, message) and \
        request.headers["ACCESS-KEY"] == KEY and request.headers["ACCESS-PASSPHRASE"] == PASSPHRASE


@pytest.fixture
def exchange(venue: FakeVenue, sleeps) -> BitgetSpot:
    venue.on("GET", "/api/v2/public/time", lambda _r: Reply(body=ok({"serverTime": str(int(time.time() * 1000))})))
    venue.json("GET", "/api/v2/spot/public/symbols", SYMBOLS)
    return BitgetSpot(api_key=KEY, api_secret=SECRET, passphrase=PASSPHRASE, base_url=venue.url, timeout=1.0,
                      sleep=sleeps)


def test_prehash_matches_the_documented_examples():
    # common/signature: "16273667805456GET/api/mix/v2/market/depth?limit=20&symbol=BTCUSDT"
    assert prehash("16273667805456", "get", "/api/mix/v2/market/depth", "limit=20&symbol=BTCUSDT", "") == \
        "16273667805456GET/api/mix/v2/market/depth?limit=20&symbol=BTCUSDT"
    body = '{"productType":"usdt-futures","symbol":"BTCUSDT","size":"8","marginMode":"crossed","side":"buy"}'
    assert prehash("16273667805456", "POST", "/api/v2/mix/order/place-order", "", body) == \
        "16273667805456POST/api/v2/mix/order/place-order" + body


def test_signature_is_base64_hmac_sha256_as_openssl_computes_it():
    message = "16273667805456GET/api/mix/v2/market/depth?limit=20&symbol=BTCUSDT"
    assert sign(SECRET, message) == openssl_b64_hmac(SECRET, message)


def test_orders_on_the_wire_are_signed_over_exact_bytes(exchange, venue):
    venue.json("POST", "/api/v2/spot/trade/place-order", ok({"orderId": "121211212122", "clientOid": "ab-3"}))
    venue.json("GET", "/api/v2/spot/trade/orderInfo", ORDER_INFO)
    order = exchange.place_order(OrderRequest(client_order_id="ab-3", symbol="BTCUSDT", side="buy", type="limit",
                                              quantity=Decimal("0.0012345678"), price=Decimal("26000.12345")))
    assert order.venue_order_id == "121211212122" and order.status == "open"
    exchange.get_order("BTCUSDT", client_order_id="ab-3")
    post, get = venue.calls("POST", "/api/v2/spot/trade/place-order")[0], venue.calls(
        "GET", "/api/v2/spot/trade/orderInfo")[0]
    assert verify(post) and verify(get)
    assert json.loads(post.body) == {"symbol": "BTCUSDT", "side": "buy", "orderType": "limit", "force": "gtc",
                                     "price": "26000.1234", "size": "0.00123456", "clientOid": "ab-3"}
    assert get.query == "clientOid=ab-3"


def test_market_buy_must_be_sized_in_quote(exchange, venue):
    with pytest.raises(InvalidOrder, match="quote currency"):
        exchange.place_order(OrderRequest(client_order_id="ab-4", symbol="BTCUSDT", side="buy", type="market",
                                          quantity=Decimal("0.01")))
    venue.json("POST", "/api/v2/spot/trade/place-order", ok({"orderId": "1", "clientOid": "ab-4"}))
    exchange.place_order(OrderRequest(client_order_id="ab-4", symbol="BTCUSDT", side="buy", type="market",
                                      quote_quantity=Decimal("10")))
    assert json.loads(venue.calls("POST", "/api/v2/spot/trade/place-order")[0].body)["size"] == "10"


def test_documented_shapes(exchange, venue):
    rules = exchange.rules("BTCUSDT")
    assert (rules.tick_size, rules.step_size, rules.min_qty, rules.min_notional) == (
        Decimal("0.0001"), Decimal("1E-8"), Decimal("0.0001"), Decimal("5"))
    venue.json("GET", "/api/v2/spot/trade/orderInfo", ORDER_INFO)
    order = exchange.get_order("BTCUSDT", venue_order_id="121211212122")
    assert (order.status, order.filled_qty, order.avg_price, order.quantity) == (
        "filled", Decimal("0.0007"), Decimal("13000"), None)  # market buy size is quote, not base
    venue.json("GET", "/api/v2/spot/account/assets", ok([{"coin": "USDT", "available": "1000.5", "frozen": "10",
                                                           "locked": "2", "limitAvailable": "0", "uTime": "1622697148"}]))
    assert exchange.balances()["USDT"].total == Decimal("1012.5")
    venue.json("GET", "/api/v2/spot/trade/fills", ok([{
        "userId": "**", "symbol": "BTCUSDT", "orderId": "12345678910", "tradeId": "12345678910", "orderType": "limit",
        "side": "buy", "priceAvg": "13000", "size": "0.0007", "amount": "9.1",
        "feeDetail": {"deduction": "no", "feeCoin": "BTC", "totalDeductionFee": "", "totalFee": "-0.0000007"},
        "tradeScope": "taker", "cTime": "1695865232127", "uTime": "1695865233051"}]))
    [fill] = exchange.trades("BTCUSDT")
    assert (fill.fee, fill.fee_asset, fill.qty) == (Decimal("0.0000007"), "BTC", Decimal("0.0007"))
    venue.json("GET", "/api/v2/spot/market/candles", ok([
        ["1695835800000", "26210.5", "26210.5", "26194.5", "26194.5", "26.26", "687897.63", "687897.63"]]))
    [kline] = exchange.klines("BTCUSDT", "1m")
    assert kline.low == Decimal("26194.5")
    assert venue.calls("GET", "/api/v2/spot/market/candles")[0].params["granularity"] == "1min"


@pytest.mark.parametrize(("code", "msg", "error"), [
    ("40037", "Apikey does not exist", AuthError),
    ("40009", "sign signature error", AuthError),
    ("43012", "Insufficient balance", InsufficientFunds),
    ("43001", "The order does not exist", OrderNotFound),
    ("40808", "Parameter verification exception size checkScale error", InvalidOrder),
    ("429", "Too Many Requests", RateLimited),
])
def test_error_codes_map_to_taxonomy(exchange, venue, code, msg, error):
    venue.json("GET", "/api/v2/spot/trade/unfilled-orders", {"code": code, "msg": msg, "requestTime": 1}, status=400)
    with pytest.raises(error) as caught:
        exchange.open_orders("BTCUSDT")
    assert (caught.value.code, caught.value.message) == (code, msg)
