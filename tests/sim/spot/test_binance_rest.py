"""The Binance spot REST face, driven over real HTTP with real HMAC signatures."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import requests

from tests.sim.spot.conftest import SignedClient


def best(sim, symbol: str = "BTCUSDT") -> tuple[Decimal, Decimal]:
    ticker = requests.get(f"{sim.url}/api/v3/ticker/bookTicker", params={"symbol": symbol}, timeout=5).json()
    return Decimal(ticker["bidPrice"]), Decimal(ticker["askPrice"])


def far_price(sim, side: str) -> str:
    """A limit price well away from the market, so the order rests."""
    bid, ask = best(sim)
    price = bid * Decimal("0.8") if side == "BUY" else ask * Decimal("1.2")
    return str(price.quantize(Decimal("0.01")))


# --- public endpoints ----------------------------------------------------------------------


def test_public_endpoints_answer_like_binance(sim):
    assert requests.get(f"{sim.url}/api/v3/ping", timeout=5).json() == {}
    server_time = requests.get(f"{sim.url}/api/v3/time", timeout=5).json()["serverTime"]
    assert abs(server_time - time.time() * 1000) < 2000
    info = requests.get(f"{sim.url}/api/v3/exchangeInfo", params={"symbol": "ETHUSDT"}, timeout=5).json()
    (symbol,) = info["symbols"]
    filters = {f["filterType"]: f for f in symbol["filters"]}
    assert symbol["symbol"] == "ETHUSDT" and symbol["ocoAllowed"] is True
    assert {"LIMIT", "MARKET", "STOP_LOSS_LIMIT", "LIMIT_MAKER"} <= set(symbol["orderTypes"])
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00010000"
    assert Decimal(filters["NOTIONAL"]["minNotional"]) == 5
    bid, ask = best(sim)
    assert bid < ask
    price = Decimal(
        requests.get(f"{sim.url}/api/v3/ticker/price", params={"symbol": "BTCUSDT"}, timeout=5).json()["price"]
    )
    assert bid * Decimal("0.99") < price < ask * Decimal("1.01")
    depth = requests.get(f"{sim.url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5}, timeout=5).json()
    assert len(depth["bids"]) == 5 and len(depth["asks"]) == 5 and depth["lastUpdateId"] > 0
    assert [Decimal(p) for p, _ in depth["bids"]] == sorted((Decimal(p) for p, _ in depth["bids"]), reverse=True)


def test_klines_rows_have_twelve_columns_and_honor_the_window(sim):
    now = int(time.time() * 1000)
    start = (now // 60_000 - 30) * 60_000
    rows = requests.get(
        f"{sim.url}/api/v3/klines",
        params={"symbol": "BTCUSDT", "interval": "1m", "startTime": start, "limit": 10},
        timeout=5,
    ).json()
    assert len(rows) == 10 and all(len(row) == 12 for row in rows)
    assert rows[0][0] == start and [r[0] for r in rows] == [start + i * 60_000 for i in range(10)]
    assert all(r[6] == r[0] + 59_999 for r in rows)
    assert all(
        Decimal(r[3]) <= min(Decimal(r[1]), Decimal(r[4])) <= max(Decimal(r[1]), Decimal(r[4])) <= Decimal(r[2])
        for r in rows
    )
    latest = requests.get(f"{sim.url}/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m"}, timeout=5).json()
    assert len(latest) == 500 and latest[-1][0] == (int(time.time() * 1000) // 60_000) * 60_000
    hourly = requests.get(
        f"{sim.url}/api/v3/klines",
        params={"symbol": "BTCUSDT", "interval": "1h", "endTime": start, "limit": 3},
        timeout=5,
    ).json()
    assert len(hourly) == 3 and hourly[-1][0] <= start and hourly[-1][0] % 3_600_000 == 0


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"symbol": "NOPEUSDT", "interval": "1m"}, -1121),
        ({"symbol": "BTCUSDT", "interval": "7m"}, -1120),
        ({"symbol": "BTCUSDT"}, -1102),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "abc"}, -1100),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": 2000, "endTime": 1000}, -1023),
    ],
)
def test_bad_kline_requests_get_binance_errors(sim, params, code):
    response = requests.get(f"{sim.url}/api/v3/klines", params=params, timeout=5)
    assert response.status_code == 400 and response.json()["code"] == code


def test_used_weight_header_counts_per_minute(sim):
    first = requests.get(f"{sim.url}/api/v3/time", timeout=5)
    second = requests.get(f"{sim.url}/api/v3/exchangeInfo", timeout=5)
    used_first, used_second = int(first.headers["X-MBX-USED-WEIGHT-1M"]), int(second.headers["X-MBX-USED-WEIGHT-1M"])
    assert used_second - used_first == 20 or used_second < used_first  # a new minute may have begun


# --- authentication --------------------------------------------------------------------------


def test_signed_call_with_params_split_between_query_and_body(client: SignedClient):
    """Binance signs query + body concatenated; the signature may sit at the end of the body."""
    response = client.call(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="BUY",
        body={"type": "MARKET", "quantity": "0.001", "newOrderRespType": "RESULT"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "FILLED"


def test_wrong_secret_is_rejected_with_1022(sim, client: SignedClient):
    forged = SignedClient(sim, client.api_key, "not-the-secret")
    status, code = forged.error("GET", "/api/v3/account")
    assert (status, code) == (400, -1022)
    assert forged.call("GET", "/api/v3/account").json()["msg"] == "Signature for this request is not valid."


def test_tampered_parameters_break_the_signature(client: SignedClient):
    payload = f"symbol=BTCUSDT&timestamp={int(time.time() * 1000)}"
    signature = client.sign(payload)
    response = client.session.get(
        f"{client.sim.url}/api/v3/openOrders?symbol=ETHUSDT&{payload.split('&')[1]}&signature={signature}",
        headers={"X-MBX-APIKEY": client.api_key},
        timeout=5,
    )
    assert response.json()["code"] == -1022


def test_unknown_and_malformed_api_keys(sim, client: SignedClient):
    assert SignedClient(sim, "unknownKey123", client.secret).error("GET", "/api/v3/account") == (401, -2015)
    assert SignedClient(sim, "bad key!", client.secret).error("GET", "/api/v3/account") == (401, -2014)
    response = requests.get(f"{sim.url}/api/v3/account", params={"timestamp": 1, "signature": "x"}, timeout=5)
    assert response.json()["code"] == -2014


def test_timestamp_outside_recv_window_and_in_the_future(client: SignedClient):
    stale = int(time.time() * 1000) - 10_000
    assert client.error("GET", "/api/v3/account", timestamp=stale) == (400, -1021)
    assert client.ok("GET", "/api/v3/account", timestamp=stale, recvWindow=20_000)["accountType"] == "SPOT"
    future = int(time.time() * 1000) + 5_000
    assert client.error("GET", "/api/v3/account", timestamp=future) == (400, -1021)
    assert client.error("GET", "/api/v3/account", recvWindow=70_000) == (400, -1131)


def test_missing_timestamp_or_signature(client: SignedClient):
    response = client.session.get(
        f"{client.sim.url}/api/v3/account?signature=abc", headers={"X-MBX-APIKEY": client.api_key}, timeout=5
    )
    assert response.json()["code"] == -1102 and "timestamp" in response.json()["msg"]
    response = client.session.get(
        f"{client.sim.url}/api/v3/account?timestamp={int(time.time() * 1000)}",
        headers={"X-MBX-APIKEY": client.api_key},
        timeout=5,
    )
    assert response.json()["code"] == -1102 and "signature" in response.json()["msg"]


# --- orders ----------------------------------------------------------------------------------


def test_market_buy_full_response_fees_and_balances(client: SignedClient):
    order = client.ok("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
    assert order["status"] == "FILLED" and order["executedQty"] == "0.01000000"
    fills = order["fills"]
    assert fills and sum(Decimal(f["qty"]) for f in fills) == Decimal("0.01")
    assert all(f["commissionAsset"] == "BTC" for f in fills)
    commission = sum(Decimal(f["commission"]) for f in fills)
    assert commission == Decimal("0.00001")
    cost = sum(Decimal(f["price"]) * Decimal(f["qty"]) for f in fills)
    assert Decimal(order["cummulativeQuoteQty"]) == cost
    balances = client.balances()
    assert Decimal(balances["BTC"][0]) == Decimal("2.01") - commission
    assert Decimal(balances["USDT"][0]) == Decimal("100000") - cost


def test_market_buy_by_quote_quantity(client: SignedClient):
    order = client.ok("POST", "/api/v3/order", symbol="ETHUSDT", side="BUY", type="MARKET", quoteOrderQty="100")
    assert order["status"] == "FILLED"
    assert Decimal("99") < Decimal(order["cummulativeQuoteQty"]) <= Decimal("100")
    assert Decimal(order["origQuoteOrderQty"]) == 100
    assert Decimal(client.balances()["USDT"][1]) == 0  # nothing left locked


def test_limit_order_locks_funds_and_cancel_releases_them(sim, client: SignedClient):
    price = far_price(sim, "BUY")
    order = client.ok(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.1",
        price=price,
        newClientOrderId="bot-7-order-1",
    )
    assert order["status"] == "NEW" and order["clientOrderId"] == "bot-7-order-1" and order["fills"] == []
    free, locked = client.balances()["USDT"]
    assert Decimal(locked) == Decimal(price) * Decimal("0.1")
    assert Decimal(free) + Decimal(locked) == 100000
    queried = client.ok("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="bot-7-order-1")
    assert queried["orderId"] == order["orderId"] and queried["isWorking"] is True
    assert [o["orderId"] for o in client.ok("GET", "/api/v3/openOrders", symbol="BTCUSDT")] == [order["orderId"]]
    canceled = client.ok("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"])
    assert canceled["status"] == "CANCELED" and canceled["origClientOrderId"] == "bot-7-order-1"
    assert client.balances()["USDT"] == ("100000.00000000", "0.00000000")
    assert client.ok("GET", "/api/v3/openOrders", symbol="BTCUSDT") == []


def test_duplicate_client_order_id_is_rejected_while_open_then_reusable(sim, client: SignedClient):
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": far_price(sim, "SELL"),
        "newClientOrderId": "dup-1",
    }
    first = client.ok("POST", "/api/v3/order", **params)
    response = client.call("POST", "/api/v3/order", **params)
    assert response.json() == {"code": -2010, "msg": "Duplicate order sent."}
    assert len(client.ok("GET", "/api/v3/openOrders")) == 1
    client.ok("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="dup-1")
    again = client.ok("POST", "/api/v3/order", **params)
    assert again["orderId"] != first["orderId"]


def test_response_types(sim, client: SignedClient):
    base = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": far_price(sim, "SELL"),
    }
    ack = client.ok("POST", "/api/v3/order", newOrderRespType="ACK", **base)
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    result = client.ok("POST", "/api/v3/order", newOrderRespType="RESULT", **base)
    assert result["status"] == "NEW" and "fills" not in result
    stop = client.ok(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_LOSS",
        quantity="0.01",
        stopPrice=far_price(sim, "BUY"),
    )
    assert set(stop) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}  # ACK by default


def test_ioc_and_fok_limits(sim, client: SignedClient):
    bid, ask = best(sim)
    ioc = client.ok(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="IOC",
        quantity="0.01",
        price=far_price(sim, "BUY"),
    )
    assert ioc["status"] == "EXPIRED" and ioc["executedQty"] == "0.00000000"
    fok = client.ok(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="FOK",
        quantity=str((80000 / ask).quantize(Decimal("0.00001"))),
        price=str(ask),
    )
    assert fok["status"] == "EXPIRED" and fok["fills"] == []
    taken = client.ok(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="IOC",
        quantity="0.001",
        price=str((ask * Decimal("1.01")).quantize(Decimal("0.01"))),
    )
    assert taken["status"] == "FILLED" and Decimal(taken["fills"][0]["price"]) <= ask * Decimal("1.01")
    assert client.balances()["USDT"][1] == "0.00000000"


def test_limit_maker_that_would_take_is_rejected(sim, client: SignedClient):
    _, ask = best(sim)
    response = client.call(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT_MAKER",
        quantity="0.01",
        price=str((ask * Decimal("1.01")).quantize(Decimal("0.01"))),
    )
    assert response.json() == {"code": -2010, "msg": "Order would immediately match and take."}


def test_stop_that_would_trigger_immediately_is_rejected(sim, client: SignedClient):
    response = client.call(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_LOSS",
        quantity="0.01",
        stopPrice=far_price(sim, "SELL"),
    )
    assert response.json() == {"code": -2010, "msg": "Order would trigger immediately."}


def test_resting_limit_fills_when_the_market_trades_through(sim, client: SignedClient):
    price = far_price(sim, "BUY")
    order = client.ok(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.2",
        price=price,
    )
    sim.inject_print("BTCUSDT", price, "0.05")  # touching the limit: a partial fill of the printed size
    partial = client.ok("GET", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"])
    assert partial["status"] == "PARTIALLY_FILLED" and partial["executedQty"] == "0.05000000"
    sim.inject_print("BTCUSDT", str(Decimal(price) - 1))  # through the limit: the rest fills
    filled = client.ok("GET", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"])
    assert filled["status"] == "FILLED" and Decimal(filled["cummulativeQuoteQty"]) == Decimal(price) * Decimal("0.2")
    trades = client.ok("GET", "/api/v3/myTrades", symbol="BTCUSDT", orderId=order["orderId"])
    assert [t["qty"] for t in trades] == ["0.05000000", "0.15000000"]
    assert all(
        t["isMaker"] and t["isBuyer"] and t["price"] == Decimal(price).quantize(Decimal("1E-8")).to_eng_string()
        for t in trades
    )
    assert client.balances()["USDT"][1] == "0.00000000"


def test_stop_loss_limit_triggers_on_trade_price(sim, client: SignedClient):
    bid, _ = best(sim)
    stop = (bid * Decimal("0.9")).quantize(Decimal("0.01"))
    limit = (stop * Decimal("0.99")).quantize(Decimal("0.01"))
    order = client.ok(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_LOSS_LIMIT",
        timeInForce="GTC",
        quantity="0.01",
        price=str(limit),
        stopPrice=str(stop),
        newOrderRespType="RESULT",
    )
    assert order["status"] == "NEW"
    assert client.ok("GET", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"])["isWorking"] is False
    sim.inject_print("BTCUSDT", str(stop))
    after = client.ok("GET", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"])
    # Triggered, the sell limit is below the synthetic bids, so it takes them at their (better) prices.
    assert after["isWorking"] is True and after["status"] == "FILLED"
    trades = client.ok("GET", "/api/v3/myTrades", symbol="BTCUSDT", orderId=order["orderId"])
    assert trades and all(Decimal(t["price"]) >= limit and not t["isMaker"] for t in trades)


def test_take_profit_market_sells_into_the_book_when_triggered(sim, client: SignedClient):
    _, ask = best(sim)
    trigger = (ask * Decimal("1.1")).quantize(Decimal("0.01"))
    order = client.ok(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="SELL",
        type="TAKE_PROFIT",
        quantity="0.01",
        stopPrice=str(trigger),
    )
    sim.inject_print("BTCUSDT", str(trigger))
    done = client.ok("GET", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"])
    assert done["status"] == "FILLED" and done["executedQty"] == "0.01000000"
    assert Decimal(client.balances()["BTC"][0]) == Decimal("1.99")


def test_oco_fill_of_one_leg_expires_the_other(sim, client: SignedClient):
    bid, ask = best(sim)
    above = (ask * Decimal("1.05")).quantize(Decimal("0.01"))
    below_stop = (bid * Decimal("0.95")).quantize(Decimal("0.01"))
    result = client.ok(
        "POST",
        "/api/v3/orderList/oco",
        symbol="BTCUSDT",
        side="SELL",
        quantity="0.5",
        aboveType="LIMIT_MAKER",
        abovePrice=str(above),
        belowType="STOP_LOSS",
        belowStopPrice=str(below_stop),
        listClientOrderId="oco-1",
        aboveClientOrderId="tp-1",
        belowClientOrderId="sl-1",
    )
    assert result["contingencyType"] == "OCO" and result["listClientOrderId"] == "oco-1"
    assert [o["clientOrderId"] for o in result["orders"]] == ["tp-1", "sl-1"]
    assert client.balances()["BTC"] == ("1.50000000", "0.50000000")  # one lock for both legs
    sim.inject_print("BTCUSDT", str(below_stop - 10))
    stop_leg = client.ok("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="sl-1")
    limit_leg = client.ok("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="tp-1")
    assert stop_leg["status"] == "FILLED" and limit_leg["status"] == "EXPIRED"
    assert stop_leg["orderListId"] == limit_leg["orderListId"] == result["orderListId"]
    assert client.balances()["BTC"] == ("1.50000000", "0.00000000")


def test_oco_cancel_one_leg_cancels_the_list(sim, client: SignedClient):
    bid, ask = best(sim)
    result = client.ok(
        "POST",
        "/api/v3/orderList/oco",
        symbol="BTCUSDT",
        side="SELL",
        quantity="0.1",
        aboveType="LIMIT_MAKER",
        abovePrice=str((ask * Decimal("1.05")).quantize(Decimal("0.01"))),
        belowType="STOP_LOSS_LIMIT",
        belowStopPrice=str((bid * Decimal("0.95")).quantize(Decimal("0.01"))),
        belowPrice=str((bid * Decimal("0.94")).quantize(Decimal("0.01"))),
        belowTimeInForce="GTC",
    )
    client.ok("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=result["orders"][0]["orderId"])
    assert client.ok("GET", "/api/v3/openOrders", symbol="BTCUSDT") == []
    assert client.balances()["BTC"] == ("2.00000000", "0.00000000")


def test_cancel_all_open_orders_and_history(sim, client: SignedClient):
    for i in range(3):
        client.ok(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.01",
            price=far_price(sim, "BUY"),
            newClientOrderId=f"many-{i}",
        )
    canceled = client.ok("DELETE", "/api/v3/openOrders", symbol="BTCUSDT")
    assert sorted(o["origClientOrderId"] for o in canceled) == ["many-0", "many-1", "many-2"]
    assert all(o["status"] == "CANCELED" for o in canceled)
    history = client.ok("GET", "/api/v3/allOrders", symbol="BTCUSDT")
    assert [o["clientOrderId"] for o in history] == ["many-0", "many-1", "many-2"]
    assert client.error("DELETE", "/api/v3/openOrders", symbol="BTCUSDT") == (400, -2011)


def test_orders_of_another_account_are_invisible(sim, client: SignedClient):
    order = client.ok(
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.01",
        price=far_price(sim, "BUY"),
    )
    sim.create_account("otherKey42", "other-secret", {"USDT": "10"})
    other = SignedClient(sim, "otherKey42", "other-secret")
    assert other.error("GET", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"]) == (400, -2013)
    assert other.error("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"]) == (400, -2011)
    assert other.ok("GET", "/api/v3/openOrders") == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"symbol": "XXXUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}, -1121),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.000001"}, -1013),  # LOT_SIZE
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.00001"}, -1013),  # NOTIONAL
        (
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.01",
                "price": "100.001",
            },
            -1013,
        ),  # PRICE_FILTER
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1000"}, -2010),  # insufficient
        ({"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "3"}, -2010),
        ({"symbol": "BTCUSDT", "side": "HOLD", "type": "MARKET", "quantity": "1"}, -1117),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "ICEBERG", "quantity": "1"}, -1116),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "100"}, -1102),
        (
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTD",
                "quantity": "0.01",
                "price": "100",
            },
            -1115,
        ),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1", "quoteOrderQty": "10"}, -1128),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1", "price": "10"}, -1106),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "-1"}, -1100),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01", "newClientOrderId": "a b"}, -1100),
        ({"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_LOSS", "quantity": "0.01"}, -1102),
    ],
)
def test_bad_orders_are_refused_and_change_nothing(client: SignedClient, params, code):
    before = client.balances()
    status, got = client.error("POST", "/api/v3/order", **params)
    assert (status, got) == (400, code)
    assert client.balances() == before
    assert client.ok("GET", "/api/v3/allOrders", symbol="BTCUSDT") == []


def test_unknown_orders(client: SignedClient):
    assert client.error("GET", "/api/v3/order", symbol="BTCUSDT", orderId=999_999) == (400, -2013)
    assert client.error("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="nope") == (400, -2011)
    assert client.error("GET", "/api/v3/order", symbol="BTCUSDT") == (400, -1102)


def test_place_cancel_round_trips_leave_no_order_open(sim, client: SignedClient):
    price = far_price(sim, "BUY")
    for i in range(40):
        client.ok(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.01",
            price=price,
            newClientOrderId=f"speed-{i}",
            newOrderRespType="ACK",
        )
        client.ok("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId=f"speed-{i}")
    open_ids = {order["clientOrderId"] for order in client.ok("GET", "/api/v3/openOrders", symbol="BTCUSDT")}
    assert not {f"speed-{i}" for i in range(40)} & open_ids
