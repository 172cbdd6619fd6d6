"""Kraken spot adapter: API-Sign against Kraken's published example, documented response shapes,
errors in the {"error": [...]} envelope, nonces from the shared Redis source."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from decimal import Decimal

import pytest

from core.exchanges.errors import (
    AuthError,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    RateLimited,
    Unavailable,
)
from core.exchanges.models import OcoRequest, OrderRequest
from core.exchanges.spot.kraken import KrakenSpot, sign
from tests.core.exchanges.conftest import FakeVenue, Recorded, Reply

# docs.kraken.com guides/spot-rest-auth worked example (not a real key).
DOC_SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
DOC_BODY = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
DOC_SIGN = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
API_KEY = "kraken-public-key-0123456789"

ASSET_PAIRS = {
    "error": [],
    "result": {
        "XXBTZUSD": {  # spot-rest/examples/responses/public/assets/pairs.yaml
            "altname": "XBTUSD",
            "wsname": "XBT/USD",
            "aclass_base": "currency",
            "base": "XXBT",
            "aclass_quote": "currency",
            "quote": "ZUSD",
            "lot": "unit",
            "cost_decimals": 5,
            "pair_decimals": 1,
            "lot_decimals": 8,
            "lot_multiplier": 1,
            "leverage_buy": [2, 3, 4, 5],
            "leverage_sell": [2, 3, 4, 5],
            "fees": [[0, 0.26]],
            "fees_maker": [[0, 0.16]],
            "fee_volume_currency": "ZUSD",
            "margin_call": 80,
            "margin_stop": 40,
            "ordermin": "0.0001",
            "costmin": "0.5",
            "tick_size": "0.1",
            "status": "online",
            "long_position_limit": 270,
            "short_position_limit": 180,
        }
    },
}


def closed_order(**over: object) -> dict:
    order = {
        "refid": None,
        "userref": 0,
        "cl_ord_id": "ab-5",
        "status": "closed",
        "opentm": 1688665496.7808,
        "closetm": 1688665499.1922,
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "limit",
            "price": "27500.0",
            "price2": "0",
            "leverage": "none",
            "order": "buy 1.25000000 XBTUSD @ limit 27500.0",
            "close": "",
        },
        "vol": "1.25000000",
        "vol_exec": "1.25000000",
        "cost": "34375.00000",
        "fee": "89.37500",
        "price": "27500.0",
        "stopprice": "0.00000",
        "limitprice": "0.00000",
        "misc": "",
        "oflags": "fciq",
        "trades": ["TZX2WP-XSEOP-FP7WYR"],
    }
    return order | over


def verify(request: Recorded) -> bool:
    nonce = request.form["nonce"]
    sha = hashlib.sha256((nonce + request.body.decode()).encode()).digest()
    mac = hmac.new(base64.b64decode(DOC_SECRET), request.path.encode() + sha, hashlib.sha512)
    return (
        request.headers["API-Sign"] == base64.b64encode(mac.digest()).decode() and request.headers["API-Key"] == API_KEY
    )


@pytest.fixture
def exchange(venue: FakeVenue, sleeps, redis_client) -> KrakenSpot:
    venue.on(
        "GET",
        "/0/public/Time",
        lambda _r: Reply(
            body={"error": [], "result": {"unixtime": int(time.time()), "rfc1123": "Thu,  6 Jul 23 17:57:01 +0000"}}
        ),
    )
    venue.json("GET", "/0/public/AssetPairs", ASSET_PAIRS)
    return KrakenSpot(
        api_key=API_KEY,
        api_secret=DOC_SECRET,
        base_url=venue.url,
        redis=redis_client,
        timeout=1.0,
        sleep=sleeps,
        venue_limits=(),
        key_limits=("100/second",),
    )


def test_api_sign_matches_krakens_published_example():
    assert sign(DOC_SECRET, "/0/private/AddOrder", 1616492376594, DOC_BODY) == DOC_SIGN


def test_add_order_on_the_wire_signed_with_increasing_shared_nonces(exchange, venue):
    venue.json(
        "POST",
        "/0/private/AddOrder",
        {
            "error": [],
            "result": {"descr": {"order": "buy 1.25000000 XBTUSD @ limit 27500.0"}, "txid": ["OU22CG-KLAF2-FWUDD7"]},
        },
    )
    for cid in ("ab-5", "ab-6"):
        order = exchange.place_order(
            OrderRequest(
                client_order_id=cid,
                symbol="XBTUSD",
                side="buy",
                type="limit",
                quantity=Decimal("1.25"),
                price=Decimal("27500.04"),
            )
        )
        assert order.venue_order_id == "OU22CG-KLAF2-FWUDD7" and order.status == "open"
    first, second = venue.calls("POST", "/0/private/AddOrder")
    assert verify(first) and verify(second)
    assert int(second.form["nonce"]) > int(first.form["nonce"]) >= time.time_ns() // 1000 - 10_000_000
    assert first.form | {"nonce": "n"} == {
        "nonce": "n",
        "ordertype": "limit",
        "type": "buy",
        "pair": "XBTUSD",
        "volume": "1.25",
        "price": "27500",
        "timeinforce": "GTC",
        "cl_ord_id": "ab-5",
    }


def test_stop_loss_limit_uses_price_as_trigger_and_price2_as_limit(exchange, venue):
    venue.json("POST", "/0/private/AddOrder", {"error": [], "result": {"descr": {"order": "x"}, "txid": ["O1"]}})
    exchange.place_order(
        OrderRequest(
            client_order_id="ab-7",
            symbol="XBTUSD",
            side="sell",
            type="stop_loss_limit",
            quantity=Decimal("0.5"),
            stop_price=Decimal("25000"),
            price=Decimal("24900"),
        )
    )
    form = venue.calls("POST", "/0/private/AddOrder")[0].form
    assert (form["ordertype"], form["price"], form["price2"]) == ("stop-loss-limit", "25000", "24900")


def test_rules_balances_orders_trades_klines_parse_documented_shapes(exchange, venue):
    rules = exchange.rules("XBTUSD")
    assert (rules.base, rules.quote, rules.tick_size, rules.step_size) == (
        "XBT",
        "USD",
        Decimal("0.1"),
        Decimal("1E-8"),
    )
    assert (rules.min_qty, rules.min_notional, rules.oco_allowed) == (Decimal("0.0001"), Decimal("0.5"), False)
    venue.json("POST", "/0/private/Balance", {"error": [], "result": {"ZUSD": "171288.6158", "XXBT": "0.0011"}})
    assert exchange.balances()["ZUSD"].free == Decimal("171288.6158")
    venue.json("POST", "/0/private/QueryOrders", {"error": [], "result": {"OBCMZD-JIEE7-77TH3F": closed_order()}})
    order = exchange.get_order("XBTUSD", venue_order_id="OBCMZD-JIEE7-77TH3F")
    assert (order.status, order.filled_qty, order.avg_price, order.symbol) == (
        "filled",
        Decimal("1.25"),
        Decimal("27500.0"),
        "XBTUSD",
    )
    venue.json(
        "POST",
        "/0/private/TradesHistory",
        {
            "error": [],
            "result": {
                "count": 1,
                "trades": {
                    "THVRQM-33VKH-UCI7BS": {
                        "ordertxid": "OQCLML-BW3P3-BUCMWZ",
                        "postxid": "TKH2SE-M7IF5-CFI7LT",
                        "pair": "XXBTZUSD",
                        "time": 1688667796.8802,
                        "type": "buy",
                        "ordertype": "limit",
                        "price": "30010.00000",
                        "cost": "600.20000",
                        "fee": "0.00000",
                        "vol": "0.02000000",
                        "margin": "0.00000",
                        "misc": "",
                    }
                },
            },
        },
    )
    [trade] = exchange.trades("XBTUSD")
    assert (trade.order_id, trade.qty, trade.fee_asset, trade.time_ms) == (
        "OQCLML-BW3P3-BUCMWZ",
        Decimal("0.02"),
        "USD",
        1688667796880,
    )
    venue.json(
        "GET",
        "/0/public/OHLC",
        {
            "error": [],
            "result": {
                "XXBTZUSD": [
                    [1688671200, "30306.1", "30306.2", "30305.7", "30305.7", "30306.1", "3.39243896", 23],
                    [1688671260, "30304.5", "30304.5", "30300.0", "30300.0", "30300.0", "4.42996871", 18],
                ],
                "last": 1688672160,
            },
        },
    )
    klines = exchange.klines("XBTUSD", "1m")
    assert [k.open_time_ms for k in klines] == [1688671200000, 1688671260000]
    assert klines[1].volume == Decimal("4.42996871")


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        (["EAPI:Invalid key"], AuthError),
        (["EAPI:Invalid nonce"], AuthError),
        (["EOrder:Insufficient funds"], InsufficientFunds),
        (["EOrder:Order minimum not met"], InvalidOrder),
        (["EQuery:Unknown asset pair"], InvalidOrder),
        (["EService:Unavailable"], Unavailable),
    ],
)
def test_error_envelope_maps_to_taxonomy(exchange, venue, messages, error):
    venue.json("POST", "/0/private/Balance", {"error": messages})
    with pytest.raises(error) as caught:
        exchange.balances()
    assert caught.value.message == messages[0]


def test_rate_limit_error_blocks_then_gives_up(exchange, venue):
    venue.json("POST", "/0/private/Balance", {"error": ["EAPI:Rate limit exceeded"]})
    with pytest.raises(RateLimited):
        exchange.balances()


def test_emulated_oco_places_two_linked_orders_and_cancels_on_fill(exchange, venue):
    venue.json("POST", "/0/private/AddOrder", {"error": [], "result": {"descr": {"order": "x"}, "txid": ["O1"]}})
    oco = exchange.place_oco(
        OcoRequest(
            client_order_id="ab-8",
            symbol="XBTUSD",
            side="sell",
            quantity=Decimal("1"),
            limit_price=Decimal("32000"),
            stop_price=Decimal("28000"),
        )
    )
    assert oco.emulated
    sent = [c.form for c in venue.calls("POST", "/0/private/AddOrder")]
    assert [(f["cl_ord_id"], f["ordertype"]) for f in sent] == [("ab-8-sl", "stop-loss"), ("ab-8-tp", "limit")]
    # Take-profit filled, stop still open: settling cancels the stop.
    open_stop = closed_order(
        cl_ord_id="ab-8-sl",
        status="open",
        vol_exec="0.00000000",
        descr={"pair": "XBTUSD", "type": "sell", "ordertype": "stop-loss", "price": "28000"},
    )

    def lookup(request: Recorded) -> Reply:
        if request.form["cl_ord_id"] == "ab-8-sl":
            cancelled = bool(venue.calls("POST", "/0/private/CancelOrder"))
            return Reply(body={"error": [], "result": {"open": {} if cancelled else {"O2": open_stop}}})
        return Reply(body={"error": [], "result": {"open": {}}})

    venue.on("POST", "/0/private/OpenOrders", lookup)
    venue.on(
        "POST",
        "/0/private/ClosedOrders",
        lambda r: Reply(
            body={
                "error": [],
                "result": {
                    "count": 1,
                    "closed": {
                        "O1" if r.form["cl_ord_id"] == "ab-8-tp" else "O2": closed_order(cl_ord_id=r.form["cl_ord_id"])
                        if r.form["cl_ord_id"] == "ab-8-tp"
                        else closed_order(cl_ord_id="ab-8-sl", status="canceled", vol_exec="0")
                    },
                },
            }
        ),
    )
    venue.json("POST", "/0/private/CancelOrder", {"error": [], "result": {"count": 1}})
    settled = exchange.settle_emulated_oco(oco)
    assert sorted(o.status for o in settled.orders) == ["cancelled", "filled"]
    assert [c.form["cl_ord_id"] for c in venue.calls("POST", "/0/private/CancelOrder")] == ["ab-8-sl"]


# ---- stop-loss / take-profit: `price` is the trigger, `price2` the limit (AddOrder, add.yaml) ------


@pytest.mark.parametrize(
    ("kind", "limit", "expected"),
    [
        ("stop_loss", None, {"ordertype": "stop-loss", "price": "28000"}),
        ("take_profit", None, {"ordertype": "take-profit", "price": "28000"}),
        ("stop_loss_limit", "27900", {"ordertype": "stop-loss-limit", "price": "28000", "price2": "27900"}),
        ("take_profit_limit", "27900", {"ordertype": "take-profit-limit", "price": "28000", "price2": "27900"}),
    ],
)
def test_triggered_orders_on_the_wire(exchange, venue, kind, limit, expected):
    venue.json("POST", "/0/private/AddOrder", {"error": [], "result": {"descr": {"order": "x"}, "txid": ["O1"]}})
    order = exchange.place_order(
        OrderRequest(
            client_order_id="ab-40",
            symbol="XBTUSD",
            side="sell",
            type=kind,
            quantity=Decimal("0.5"),
            stop_price=Decimal("28000.04"),
            price=Decimal(limit) if limit else None,
        )
    )
    assert (order.venue_order_id, order.type, order.status) == ("O1", kind, "open")
    [sent] = venue.calls("POST", "/0/private/AddOrder")
    assert verify(sent)
    # No timeinforce on triggered types; the trigger is rounded to the 0.1 tick.
    assert sent.form | {"nonce": "n"} == {
        "nonce": "n",
        "type": "sell",
        "pair": "XBTUSD",
        "volume": "0.5",
        "cl_ord_id": "ab-40",
        **expected,
    }


def test_triggered_orders_parse_back_with_their_limit_price(exchange, venue):
    # ClosedOrders example of docs.kraken.com rest-api/get-closed-orders: descr.price is the trigger.
    venue.json(
        "POST",
        "/0/private/QueryOrders",
        {
            "error": [],
            "result": {
                "O37652-RJWRT-IMO74O": closed_order(
                    status="canceled",
                    cl_ord_id="ab-41",
                    vol="0.00100000",
                    vol_exec="0.00000000",
                    price="0.00000",
                    descr={
                        "pair": "XBTUSD",
                        "type": "buy",
                        "ordertype": "stop-loss-limit",
                        "price": "23667.0",
                        "price2": "23700.0",
                    },
                )
            },
        },
    )
    order = exchange.get_order("XBTUSD", venue_order_id="O37652-RJWRT-IMO74O")
    assert (order.type, order.status, order.price, order.avg_price) == (
        "stop_loss_limit",
        "cancelled",
        Decimal("23700.0"),
        None,
    )


# ---- lookup by client order id -----------------------------------------------------------------


def test_client_id_lookup_filters_by_cl_ord_id_and_matches_the_echoed_id(exchange, venue):
    other = closed_order(cl_ord_id="ab-other", status="open", vol_exec="0")
    ours = closed_order(cl_ord_id="ab-42", status="open", vol_exec="0.5")
    # Even a venue ignoring the filter and returning every open order cannot make us pick another one.
    venue.json("POST", "/0/private/OpenOrders", {"error": [], "result": {"open": {"OTHER": other, "OURS": ours}}})
    order = exchange.get_order("XBTUSD", client_order_id="ab-42")
    assert (order.venue_order_id, order.client_order_id, order.status) == ("OURS", "ab-42", "partially_filled")
    [sent] = venue.calls("POST", "/0/private/OpenOrders")
    assert verify(sent) and sent.form["cl_ord_id"] == "ab-42"
    assert venue.calls("POST", "/0/private/ClosedOrders") == []


def test_client_id_lookup_falls_back_to_closed_orders_then_not_found(exchange, venue):
    venue.json("POST", "/0/private/OpenOrders", {"error": [], "result": {"open": {}}})
    venue.json(
        "POST",
        "/0/private/ClosedOrders",
        {"error": [], "result": {"count": 1, "closed": {"OCLOSED": closed_order(cl_ord_id="ab-43")}}},
    )
    order = exchange.get_order("XBTUSD", client_order_id="ab-43")
    assert (order.venue_order_id, order.status, order.filled_qty) == ("OCLOSED", "filled", Decimal("1.25"))
    assert venue.calls("POST", "/0/private/ClosedOrders")[0].form["cl_ord_id"] == "ab-43"
    with pytest.raises(OrderNotFound, match="no order ab-44 on XBTUSD"):
        exchange.get_order("XBTUSD", client_order_id="ab-44")  # the closed row is ab-43's


def test_txid_lookup_missing_from_the_answer_is_not_found(exchange, venue):
    venue.json("POST", "/0/private/QueryOrders", {"error": [], "result": {}})
    with pytest.raises(OrderNotFound):
        exchange.get_order("XBTUSD", venue_order_id="ONOPE")
    venue.json("POST", "/0/private/QueryOrders", {"error": ["EOrder:Invalid order"]})
    with pytest.raises(OrderNotFound):
        exchange.get_order("XBTUSD", venue_order_id="ONOPE")


def test_cancel_by_client_id_sends_cl_ord_id(exchange, venue):
    venue.json("POST", "/0/private/CancelOrder", {"error": [], "result": {"count": 1}})
    venue.json("POST", "/0/private/OpenOrders", {"error": [], "result": {"open": {}}})
    venue.json(
        "POST",
        "/0/private/ClosedOrders",
        {
            "error": [],
            "result": {"count": 1, "closed": {"O9": closed_order(cl_ord_id="ab-45", status="canceled", vol_exec="0")}},
        },
    )
    assert exchange.cancel_order("XBTUSD", client_order_id="ab-45").status == "cancelled"
    [sent] = venue.calls("POST", "/0/private/CancelOrder")
    assert verify(sent) and sent.form["cl_ord_id"] == "ab-45" and "txid" not in sent.form


def test_emulated_oco_whose_take_profit_is_refused_cancels_the_stop(exchange, venue):
    def add_order(request: Recorded) -> Reply:
        if request.form["cl_ord_id"].endswith("-tp"):
            return Reply(body={"error": ["EOrder:Insufficient funds"]})
        return Reply(body={"error": [], "result": {"descr": {"order": "x"}, "txid": ["OSL"]}})

    venue.on("POST", "/0/private/AddOrder", add_order)
    venue.json("POST", "/0/private/CancelOrder", {"error": [], "result": {"count": 1}})
    venue.json("POST", "/0/private/OpenOrders", {"error": [], "result": {"open": {}}})
    venue.json(
        "POST",
        "/0/private/ClosedOrders",
        {
            "error": [],
            "result": {
                "count": 1,
                "closed": {"OSL": closed_order(cl_ord_id="ab-46-sl", status="canceled", vol_exec="0")},
            },
        },
    )
    with pytest.raises(InsufficientFunds):
        exchange.place_oco(
            OcoRequest(
                client_order_id="ab-46",
                symbol="XBTUSD",
                side="sell",
                quantity=Decimal("1"),
                limit_price=Decimal("32000"),
                stop_price=Decimal("28000"),
                stop_limit_price=Decimal("27900"),
            )
        )
    placed = [c.form for c in venue.calls("POST", "/0/private/AddOrder")]
    assert [(f["cl_ord_id"], f["ordertype"], f.get("price2")) for f in placed] == [
        ("ab-46-sl", "stop-loss-limit", "27900"),
        ("ab-46-tp", "limit", None),
    ]
    assert [c.form["cl_ord_id"] for c in venue.calls("POST", "/0/private/CancelOrder")] == ["ab-46-sl"]


# ---- trailing stop: `price` is the relative offset, "+" prefix, "%" suffix (AddOrder, add.yaml) -----------


def test_trailing_stop_on_the_wire_as_a_relative_percent_offset(exchange, venue):
    venue.json("POST", "/0/private/AddOrder", {"error": [], "result": {"descr": {"order": "x"}, "txid": ["O7"]}})
    order = exchange.place_order(
        OrderRequest(
            client_order_id="ab-41",
            symbol="XBTUSD",
            side="sell",
            type="trailing_stop",
            quantity=Decimal("0.5"),
            trail_pct=Decimal("1.5"),
        )
    )
    assert (order.venue_order_id, order.type) == ("O7", "trailing_stop")
    [sent] = venue.calls("POST", "/0/private/AddOrder")
    assert verify(sent)
    assert sent.form | {"nonce": "n"} == {
        "nonce": "n",
        "ordertype": "trailing-stop",
        "type": "sell",
        "pair": "XBTUSD",
        "volume": "0.5",
        "price": "+1.5%",
        "cl_ord_id": "ab-41",
    }


def test_trailing_stop_with_an_activation_price_is_refused_before_sending(exchange, venue):
    with pytest.raises(InvalidOrder, match="no activation price"):
        exchange.place_order(
            OrderRequest(
                client_order_id="ab-42",
                symbol="XBTUSD",
                side="sell",
                type="trailing_stop",
                quantity=Decimal("0.5"),
                trail_pct=Decimal("1.5"),
                stop_price=Decimal("30000"),
            )
        )
    assert venue.calls("POST", "/0/private/AddOrder") == []
