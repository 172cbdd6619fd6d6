"""Stark ECDSA and Paradex SNIP-12 hashing, proven against starknet-py and Paradex's published vectors."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starknet_py.hash.utils import message_signature, private_to_stark_key, verify_message_signature
from starknet_py.utils.typed_data import TypedData

from core.exchanges.perp import stark

# Private/public key pair from tradeparadex/starknet-signing-cpp tests/test.cpp (signSpeedTest).
CPP_PRIVATE = 0x3C1E9550E66958296D11B60F8E8E7A7AD990D07FA65D5F7652C4A6C87D4E3CC
CPP_PUBLIC = 0x77A3B314DB07C45076D11F62B6F9E748A39790441823307743CF00D6597EA43
# Account address and chain of the OrderMessage vector in the same file.
CPP_ACCOUNT = 0x1F06D2232E3EB0D8BD4B9294A930D553F610A0D7B24BC52D9472C7BDA478927
CPP_CHAIN = "PRIVATE_SN_POTC_GOERLI"

hashes = st.integers(min_value=1, max_value=2**251 - 1)
private_keys = st.integers(min_value=1, max_value=stark.EC_ORDER - 1)


def test_public_key_matches_published_pair_and_starknet_py():
    assert stark.public_key_of(CPP_PRIVATE) == CPP_PUBLIC
    assert private_to_stark_key(CPP_PRIVATE) == CPP_PUBLIC


# starknet-py's own signer takes ~200 ms, so the equality property runs on a modest sample.
@settings(max_examples=20, deadline=None)
@given(msg_hash=hashes, private_key=private_keys)
def test_signature_equals_starknet_py_and_verifies_there(msg_hash, private_key):
    ours = stark.sign(msg_hash, private_key)
    assert (ours.r, ours.s) == tuple(message_signature(msg_hash, private_key))
    public = private_to_stark_key(private_key)
    assert verify_message_signature(msg_hash, [ours.r, ours.s], public)
    assert stark.verify(msg_hash, ours, public)


@settings(max_examples=30, deadline=None)
@given(msg_hash=hashes, private_key=private_keys)
def test_verify_rejects_a_different_hash_or_key(msg_hash, private_key):
    sig = stark.sign(msg_hash, private_key)
    public = stark.public_key_of(private_key)
    assert not stark.verify((msg_hash + 1) % 2**251, sig, public)
    # Keys are x-only, so k and EC_ORDER - k are the same public key: pick another key than both.
    other = next(k for k in (2, 3, 5) if k not in (private_key, stark.EC_ORDER - private_key))
    assert not stark.verify(msg_hash, sig, stark.public_key_of(other))
    assert not stark.verify(msg_hash, (sig.r, (sig.s + 1) % stark.EC_ORDER or 1), public)


def test_hash_one_nibble_short_uses_starknet_padding():
    # 248..251-bit hashes are shifted by a nibble before RFC 6979 (cairo-lang/elliptic.js quirk).
    for bits in (248, 249, 250, 251):
        msg_hash = (1 << (bits - 1)) | 0xABCDEF
        assert tuple(stark.sign(msg_hash, CPP_PRIVATE).__dict__.values()) == tuple(
            message_signature(msg_hash, CPP_PRIVATE)
        )


@pytest.mark.parametrize("bad", [-1, 0, 2**251, 2**252])
def test_message_hash_outside_251_bits_is_refused(bad):
    with pytest.raises(ValueError, match="2\\*\\*251"):
        stark.sign(bad, CPP_PRIVATE)
    if bad:
        assert not stark.verify(bad, (1, 1), CPP_PUBLIC)


@pytest.mark.parametrize("bad", [0, stark.EC_ORDER, -5])
def test_private_key_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="out of range"):
        stark.StarkKey(bad)


def test_verify_rejects_out_of_range_components_and_non_curve_key():
    sig = stark.sign(123, CPP_PRIVATE)
    assert not stark.verify(123, (0, sig.s), CPP_PUBLIC)
    assert not stark.verify(123, (2**251, sig.s), CPP_PUBLIC)
    assert not stark.verify(123, (sig.r, 0), CPP_PUBLIC)
    # Roughly half of all x values are not on the curve; 0 is not (beta is a non-residue there).
    non_curve = next(x for x in range(2, 100) if _not_on_curve(x))
    assert not stark.verify(123, sig, non_curve)


def _not_on_curve(x: int) -> bool:
    rhs = (x**3 + x + stark.BETA) % stark.FIELD_PRIME
    return pow(rhs, (stark.FIELD_PRIME - 1) // 2, stark.FIELD_PRIME) != 1


def test_stark_key_repr_hides_the_secret():
    key = stark.StarkKey(CPP_PRIVATE)
    assert f"{CPP_PRIVATE:x}" not in repr(key) and str(CPP_PRIVATE) not in repr(key)
    assert f"{CPP_PUBLIC:x}" in repr(key)


# --- SNIP-12 vectors: tradeparadex/starknet-signing-cpp tests/test.cpp ----------------------------


def test_domain_hash_matches_cpp_vector():
    hasher = stark.ParadexHasher(CPP_CHAIN, CPP_ACCOUNT)
    assert hasher.domain_hash == 0x6A9F6F5D2B1C9AD4528A1EB8F357FC7E51F5C01AD09120D46075023164BD1C4


def test_order_struct_hash_matches_cpp_vector():
    # MARKET BUY 0.1 ETH-USD-PERP at 1690186431033 ms; price 0 for market orders.
    hasher = stark.ParadexHasher(CPP_CHAIN, CPP_ACCOUNT)
    size = stark.scaled_felt(Decimal("0.1"))
    assert size == 10_000_000  # paradex-py tests/message/test_order.py: 0.1 -> "10000000"
    got = hasher.order_struct_hash(1690186431033, "ETH-USD-PERP", "BUY", "MARKET", size, 0)
    assert got == 0x067A4BEEEFF01460F2FAB511A313B2971514B0E433981CDCA8AD146F7CB7191E


def test_order_message_hash_matches_cpp_vector():
    hasher = stark.ParadexHasher(CPP_CHAIN, CPP_ACCOUNT)
    got = hasher.order_hash(1690187319619, "ETH-USD-PERP", "BUY", "MARKET", Decimal("0.1"), Decimal(0))
    assert got == 0x02FF954A62A6191411AA051588C65A4AC37690CE781BB345BB886AC947630E5B


def test_auth_struct_hash_matches_cpp_vector():
    struct = stark.hash_chain(
        [stark.REQUEST_TYPE_HASH, stark.felt_of("POST"), stark.felt_of("/v1/auth"), 0, 1690186758, 1690273158]
    )
    assert struct == 0x0069CB5C6EA69984C70005D0A56C2198C693AADE9E7611686D517E6E71ECAAD3


def _typed(primary: str, fields: list[tuple[str, str]], message: dict, chain: str) -> TypedData:
    return TypedData.from_dict(
        {
            "domain": {"name": "Paradex", "chainId": chain, "version": "1"},
            "primaryType": primary,
            "types": {
                "StarkNetDomain": [
                    {"name": "name", "type": "felt"},
                    {"name": "chainId", "type": "felt"},
                    {"name": "version", "type": "felt"},
                ],
                primary: [{"name": n, "type": t} for n, t in fields],
            },
            "message": message,
        }
    )


ORDER_FIELDS = [(n, "felt") for n in ("timestamp", "market", "side", "orderType", "size", "price")]


@settings(max_examples=25, deadline=None)
@given(
    timestamp=st.integers(min_value=1_600_000_000_000, max_value=2_000_000_000_000),
    side=st.sampled_from(["BUY", "SELL"]),
    order_type=st.sampled_from(["LIMIT", "MARKET"]),
    size=st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(1000), places=8),
    price=st.decimals(min_value=Decimal(0), max_value=Decimal(200000), places=8),
    account=st.integers(min_value=1, max_value=2**251 - 1),
)
def test_order_hash_equals_starknet_py_typed_data(timestamp, side, order_type, size, price, account):
    chain = "PRIVATE_SN_PARACLEAR_MAINNET"
    typed = _typed(
        "Order",
        ORDER_FIELDS,
        {
            "timestamp": str(timestamp),
            "market": "BTC-USD-PERP",
            "side": "1" if side == "BUY" else "2",
            "orderType": order_type,
            "size": str(int(size.scaleb(8))),
            "price": str(int(price.scaleb(8))),
        },
        hex(stark.felt_of(chain)),
    )
    ours = stark.ParadexHasher(chain, account).order_hash(timestamp, "BTC-USD-PERP", side, order_type, size, price)
    assert ours == typed.message_hash(account)


def test_auth_and_onboarding_hashes_equal_starknet_py_typed_data():
    chain, account = "PRIVATE_SN_POTC_SEPOLIA", 0x1234567
    hasher = stark.ParadexHasher(chain, account)
    auth = _typed(
        "Request",
        [(n, "felt") for n in ("method", "path", "body", "timestamp", "expiration")],
        {"method": "POST", "path": "/v1/auth", "body": "", "timestamp": 1700000000, "expiration": 1700001800},
        hex(stark.felt_of(chain)),
    )
    assert hasher.auth_hash(1700000000, 1700001800) == auth.message_hash(account)
    onboarding = _typed("Constant", [("action", "felt")], {"action": "Onboarding"}, hex(stark.felt_of(chain)))
    assert hasher.onboarding_hash() == onboarding.message_hash(account)


@pytest.mark.parametrize("bad", [Decimal("0.000000001"), Decimal("-1")])
def test_scaled_felt_refuses_sizes_the_chain_cannot_represent(bad):
    with pytest.raises(ValueError, match="8 decimals"):
        stark.scaled_felt(bad)


@pytest.mark.parametrize("bad", ["X" * 32, "BTC-USD-PERP-é"])
def test_short_string_limits(bad):
    with pytest.raises(ValueError, match="short string"):
        stark.felt_of(bad)


# --- key derivation: tradeparadex/paradex.js tests/account.test.ts + tests/factories/paradex-config.ts --

PARADEX_JS_CONFIG = {
    "l1_chain_id": 11155111,
    "account_hash": 0x41CB0280EBADAA75F996D8D92C6F265F6D040BB3BA442E5F86A554F1765244E,
    "proxy_hash": 0x3530CC4759D78042F1B543BF797F5F3D647CDE0388C33734CF91B7F7B9314A9,
}


@pytest.mark.parametrize(
    "phrase,address",
    [
        (
            "test test test test test test test test test test test ball",
            0x72C394AAA3FAE59AD7749C856DC18E2A289E83885B80C0DA7731290A9163E17,
        ),
        (
            "test test test test test test test test test test test junk",
            0x37FF1C9D89A50B3DD3A4F90E020EA80251B09BA28049EFBE4F7D3FEC2995C4A,
        ),
        (
            "test test test test test test test test test test test waste",
            0x18610FA9CDB1DD19CC224F137754DC98FC4A2AF9BB3A20DC6A15BAA1FC1A1F8,
        ),
    ],
)
def test_account_address_derivation_matches_paradex_js(phrase, address):
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    eth_key = Account.from_mnemonic(phrase).key
    private = stark.stark_private_key_from_eth(eth_key, PARADEX_JS_CONFIG["l1_chain_id"])
    public = stark.public_key_of(private)
    assert public == private_to_stark_key(private)
    got = stark.paradex_account_address(public, PARADEX_JS_CONFIG["account_hash"], PARADEX_JS_CONFIG["proxy_hash"])
    assert got == address


def test_grind_key_is_below_the_limit_and_deterministic():
    assert stark.grind_key(0x1234) == stark.grind_key(0x1234) < stark.EC_ORDER
    assert stark.grind_key(0x1234) != stark.grind_key(0x1235)
