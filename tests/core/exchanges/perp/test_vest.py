"""Vest signing and message parsing. Vest publishes no signature vector (ref/EXCHANGES.md §4), so the
scheme is pinned by construction from the documented ABI tuple and proven by signer recovery."""

from decimal import Decimal as D

import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from core.exchanges import errors
from core.exchanges.perp import vest
from core.exchanges.perp.venue import PerpOrderRequest

SIGNER = Account.from_key("0x" + "11" * 32)


def venue(**kwargs) -> vest.VestVenue:
    return vest.VestVenue(
        rest_url="http://127.0.0.1:9",
        ws_url="ws://127.0.0.1:9",
        api_key="k-secret-123",
        signing_key=SIGNER.key.hex(),
        clock_ms=lambda: 1_700_000_000_000,
        **kwargs,
    )


def test_order_digest_is_keccak_of_the_documented_abi_tuple():
    order = {
        "time": 1,
        "nonce": 2,
        "orderType": "MARKET",
        "symbol": "BTC-PERP",
        "isBuy": True,
        "size": "0.01",
        "limitPrice": "70000",
        "reduceOnly": False,
    }
    expected = keccak(
        encode(
            ["uint256", "uint256", "string", "string", "bool", "string", "string", "bool"],
            [1, 2, "MARKET", "BTC-PERP", True, "0.01", "70000", False],
        )
    )
    assert vest.order_digest(order) == expected


@settings(max_examples=60, deadline=None)
@given(
    values=st.tuples(
        st.integers(0, 2**256 - 1),
        st.integers(0, 2**64),
        st.text(max_size=70),
        st.text(max_size=3),
        st.booleans(),
        st.text(alphabet="0123456789.", max_size=40),
        st.text(max_size=33),
        st.booleans(),
    )
)
def test_abi_encoding_matches_eth_abi_byte_for_byte(values):
    assert vest.abi_encode(vest.ORDER_ABI, list(values)) == encode(vest.ORDER_ABI, list(values))


def test_personal_sign_is_eth_accounts_eip191_signature():
    digest = keccak(b"any order")
    expected = Account.sign_message(encode_defunct(primitive=digest), SIGNER.key).signature.hex()
    assert vest.personal_sign(digest, vest.signing_key_from(SIGNER.key.hex())) == "0x" + expected.removeprefix("0x")


@settings(max_examples=15, deadline=None)
@given(
    size=st.decimals(min_value=D("0.0001"), max_value=D(100), places=4),
    price=st.decimals(min_value=D("0.01"), max_value=D(200000), places=2),
    side=st.sampled_from(["BUY", "SELL"]),
    reduce_only=st.booleans(),
)
def test_signed_order_recovers_to_the_signing_key_and_body_matches_signed_text(size, price, side, reduce_only):
    body = venue().signed_order(PerpOrderRequest("BTC-PERP", side, size, price, "c", reduce_only=reduce_only))
    order = body["order"]
    assert body["signature"].startswith("0x") and len(body["signature"]) == 132
    assert vest.recover_signer(vest.order_digest(order), body["signature"]) == SIGNER.address.lower()
    assert D(order["size"]) == size and D(order["limitPrice"]) == price
    assert order["isBuy"] == (side == "BUY") and order["reduceOnly"] == reduce_only


def test_changing_the_text_of_a_number_breaks_the_signature():
    body = venue().signed_order(PerpOrderRequest("BTC-PERP", "BUY", D("3.12"), D("100"), "c"))
    tampered = {**body["order"], "size": "3.1200"}
    assert vest.recover_signer(vest.order_digest(tampered), body["signature"]) != SIGNER.address.lower()


def test_nonces_strictly_increase_and_numeric_client_ids_are_the_nonce():
    v = venue()
    assert v.next_nonce() < v.next_nonce() < v.next_nonce()
    body = v.signed_order(PerpOrderRequest("BTC-PERP", "BUY", D(1), D(1), "42"))
    assert body["order"]["nonce"] == 42


def test_market_order_without_worst_price_is_refused():
    with pytest.raises(ValueError, match="limit price"):
        venue().signed_order(PerpOrderRequest("BTC-PERP", "BUY", D(1), None, "c"))


def test_signer_proof_recovers_to_primary_and_has_no_chain_id():
    primary = Account.from_key("0x" + "22" * 32)
    body = vest.registration_body(primary.key, SIGNER.address, 1_800_000_000_000, vest.PROD_ROUTER)
    assert body["primaryAddr"] == primary.address.lower() and body["signingAddr"] == SIGNER.address.lower()
    assert "chainId" not in vest.signer_proof_typed_data(SIGNER.address, 1, vest.PROD_ROUTER)["domain"]
    assert (
        vest.recover_signer_proof(body["signingAddr"], 1_800_000_000_000, vest.PROD_ROUTER, body["signature"])
        == primary.address.lower()
    )


def test_cancel_digest_covers_time_nonce_and_id():
    assert vest.cancel_digest({"time": 1, "nonce": 2, "id": "0xab"}) == keccak(
        encode(["uint256", "uint256", "string"], [1, 2, "0xab"])
    )


def test_depth_frame_parsing():
    frame = '{"channel":"BTC-PERP@depth","data":{"bids":[["100.5","2"]],"asks":[["101","1.5"]]}}'
    assert vest.parse_depth_frame(frame) == ("BTC-PERP", [(D("100.5"), D(2))], [(D(101), D("1.5"))])
    assert vest.parse_depth_frame('{"data":"PONG"}') is None
    assert vest.parse_depth_frame('{"result":null,"id":1}') is None


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1,2]",
        b"\xff\xfe",
        '{"channel":"X@depth"}',
        '{"channel":"X@depth","data":{"bids":[["x","1"]],"asks":[]}}',
    ],
)
def test_malformed_depth_frames_raise_malformed_response(raw):
    with pytest.raises(errors.MalformedResponse):
        vest.parse_depth_frame(raw)


@pytest.mark.parametrize(
    "status,body,cls",
    [
        (401, {"code": 1002, "msg": "UNAUTHORIZED"}, errors.AuthError),
        (400, {"code": 1022, "msg": "INVALID_SIGNATURE"}, errors.AuthError),
        (429, {"code": 429, "msg": "Rate limited"}, errors.RateLimited),
        (400, {"code": 1023, "msg": "INVALID_NONCE"}, errors.InvalidOrder),
        (400, {"code": 3002, "msg": "MARGIN_CHECK_FAILED"}, errors.InsufficientFunds),
        (400, {"code": 3017, "msg": "ORDER_NOT_FOUND"}, errors.OrderNotFound),
        (503, None, errors.Unavailable),
    ],
)
def test_error_codes_map_onto_the_taxonomy(status, body, cls):
    with pytest.raises(cls):
        vest.raise_for_error(status, body)


def test_repr_hides_api_key_and_signing_key():
    text = repr(venue())
    assert "k-secret-123" not in text and "11" * 32 not in text and SIGNER.address.lower() in text
