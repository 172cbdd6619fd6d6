"""Paradex order/auth signing and book-frame parsing, proven with starknet-py's own verify."""

import json
import time
from decimal import Decimal as D

import pytest
from starknet_py.hash.utils import verify_message_signature

from core.exchanges import errors
from core.exchanges.perp import paradex
from core.exchanges.perp.venue import PerpOrderRequest

PRIVATE = 0x3C1E9550E66958296D11B60F8E8E7A7AD990D07FA65D5F7652C4A6C87D4E3CC  # starknet-signing-cpp test key
ACCOUNT = 0x1F06D2232E3EB0D8BD4B9294A930D553F610A0D7B24BC52D9472C7BDA478927
CHAIN = "PRIVATE_SN_PARACLEAR_MAINNET"


def signer() -> paradex.ParadexSigner:
    return paradex.ParadexSigner(PRIVATE, ACCOUNT, CHAIN)


def test_order_body_signature_verifies_with_starknet_py():
    s = signer()
    req = PerpOrderRequest(
        "BTC-USD-PERP",
        "SELL",
        D("0.25"),
        D("65000.5"),
        "cid",
        order_type="LIMIT",
        time_in_force="GTC",
        reduce_only=True,
    )
    signed = s.sign_order(req.market, req.side, req.order_type, req.size, req.price)
    body = paradex.order_body(signed, req, 60_000)
    assert body["price"] == "65000.5" and body["size"] == "0.25" and body["flags"] == ["REDUCE_ONLY"]
    assert body["instruction"] == "GTC" and body["client_id"] == "cid"
    r, sig_s = (int(x) for x in json.loads(body["signature"]))
    digest = s.hasher.order_hash(body["signature_timestamp"], "BTC-USD-PERP", "SELL", "LIMIT", D("0.25"), D("65000.5"))
    assert verify_message_signature(digest, [r, sig_s], s.key.public)


def test_market_order_signs_price_zero_and_omits_price():
    s = signer()
    req = PerpOrderRequest("BTC-USD-PERP", "BUY", D("0.01"), D("70000"), "c")
    signed = s.sign_order(req.market, req.side, "MARKET", req.size, req.price)
    assert signed.price == 0
    body = paradex.order_body(signed, req, 60_000)
    assert "price" not in body and body["instruction"] == "IOC" and "flags" not in body


def test_signature_timestamps_are_unique():
    s = signer()
    stamps = [s.sign_order("BTC-USD-PERP", "BUY", "MARKET", D(1), None).timestamp_ms for _ in range(5)]
    assert len(set(stamps)) == 5


def test_auth_headers_verify_and_use_seconds():
    s = signer()
    headers = s.auth_headers(now_s=1_700_000_000)
    assert headers["PARADEX-TIMESTAMP"] == "1700000000"
    expiry = int(headers["PARADEX-SIGNATURE-EXPIRATION"])
    r, sig_s = (int(x) for x in json.loads(headers["PARADEX-STARKNET-SIGNATURE"]))
    assert verify_message_signature(s.hasher.auth_hash(1_700_000_000, expiry), [r, sig_s], s.key.public)


def test_presigned_pool_serves_only_its_size_and_drops_expired_orders():
    pool = paradex.PresignedPool(signer(), "BTC-USD-PERP", D("0.01"), depth=2, max_age_ms=50)
    assert pool.refill() == 4
    assert pool.take("BTC-USD-PERP", "BUY", D("0.02")) is None
    assert pool.take("ETH-USD-PERP", "BUY", D("0.01")) is None
    assert pool.take("BTC-USD-PERP", "BUY", D("0.01")).side == "BUY"
    time.sleep(0.06)
    assert pool.take("BTC-USD-PERP", "SELL", D("0.01")) is None  # too old to trust
    assert pool.refill() == 4 and pool.available("SELL") == 2


def test_book_frames_snapshot_and_delta():
    snap = {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {
            "channel": "order_book.BTC-USD-PERP.deltas@15@50ms",
            "data": {
                "seq_no": 7,
                "market": "BTC-USD-PERP",
                "last_updated_at": 1,
                "update_type": "s",
                "inserts": [
                    {"side": "BUY", "price": "100", "size": "1"},
                    {"side": "SELL", "price": "101", "size": "2"},
                ],
                "updates": [],
                "deletes": [],
            },
        },
    }
    frame = paradex.parse_book_frame(json.dumps(snap))
    assert frame["snapshot"] and frame["seq"] == 7
    assert frame["bids"] == [(D(100), D(1))] and frame["asks"] == [(D(101), D(2))]
    snap["params"]["data"].update(
        update_type="d", seq_no=8, inserts=[], deletes=[{"side": "BUY", "price": "100", "size": "1"}]
    )
    delta = paradex.parse_book_frame(json.dumps(snap))
    assert not delta["snapshot"] and delta["bids"] == [(D(100), D(0))]
    assert paradex.parse_book_frame('{"jsonrpc":"2.0","id":1,"result":{}}') is None


@pytest.mark.parametrize(
    "raw",
    [
        "nope",
        "[]",
        '{"method":"subscription","params":{"channel":"order_book.X","data":{"update_type":"s"}}}',
        '{"method":"subscription","params":{"channel":"order_book.X","data":{"update_type":"z","seq_no":1}}}',
        '{"method":"subscription","params":{"channel":"order_book.X","data":{"update_type":"s","seq_no":1,'
        '"inserts":[{"side":"UP","price":"1","size":"1"}]}}}',
    ],
)
def test_malformed_book_frames_raise(raw):
    with pytest.raises(errors.MalformedResponse):
        paradex.parse_book_frame(raw)


@pytest.mark.parametrize(
    "status,body,cls",
    [
        (401, {"error": "INVALID_TOKEN", "message": "x"}, errors.AuthError),
        (400, {"error": "INVALID_SIGNATURE", "message": "x"}, errors.AuthError),
        (400, {"error": "NOT_ENOUGH_MARGIN", "message": "x"}, errors.InsufficientFunds),
        (404, {"error": "ORDER_NOT_FOUND", "message": "x"}, errors.OrderNotFound),
        (429, None, errors.RateLimited),
        (502, None, errors.Unavailable),
        (400, {"error": "PRICE_BAND", "message": "x"}, errors.InvalidOrder),
    ],
)
def test_error_mapping(status, body, cls):
    with pytest.raises(cls):
        paradex.raise_for_error(status, body)


def test_reprs_hide_the_private_key():
    s = signer()
    assert f"{PRIVATE:x}" not in repr(s) and str(PRIVATE) not in repr(s)
    v = paradex.ParadexVenue(rest_url="http://127.0.0.1:9", ws_url="ws://127.0.0.1:9", signer=s)
    assert f"{PRIVATE:x}" not in repr(v)
