"""Stark-curve ECDSA and Paradex SNIP-12 hashing, fast enough for the arbitrage hot path.

starknet-py signs through a C++ binding that takes ~200 ms per signature here. This module signs the
same message hash into the *same* (r, s) — deterministic k by RFC 6979 with starknet-py's default
seed (32), then cairo-lang's retry rules — but multiplies the generator through a precomputed
fixed-base table in plain integer arithmetic (~0.1-0.2 ms). Arbitrary-point multiplications (verify,
public keys) go through `fastecdsa` with the Stark curve parameters. starknet-py stays in use for
what is off the hot path: keccak selectors, short strings and address computation.

Paradex uses the legacy SNIP-12 "revision 0" typed data (Pedersen hash chains). The domain hash and
the type hashes are computed once per chain id, so an order hash costs thirteen Pedersen hashes.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ecdsa.rfc6979 import generate_k
from eth_account import Account
from eth_account.messages import encode_typed_data
from fastecdsa.rust import Curve, Point
from starknet_py.cairo.felt import encode_shortstring
from starknet_py.hash.address import compute_address
from starknet_py.hash.selector import get_selector_from_name
from starknet_py.hash.utils import pedersen_hash
from sympy.ntheory.residue_ntheory import sqrt_mod

FIELD_PRIME = 0x800000000000011000000000000000000000000000000000000000000000001
EC_ORDER = 0x800000000000010FFFFFFFFFFFFFFFFB781126DCAE7B2321E66A241ADC64D2F
ALPHA = 1
BETA = 0x6F21413EFBE40DE150E596D72F7A8C5609AD26C15C915C1F4CDFCB99CEE9E89
GEN_X = 0x1EF15C18599971B7BECED415A40F0C7DEACFD9B0D1819E03D723D8BC943CFCA
GEN_Y = 0x5668060AA49730B7BE4801DF46EC62DE53ECD11ABE43A32873000C36E8DC1F
# r, w and the message hash must all fit in 251 bits (cairo-lang's N_ELEMENT_BITS_ECDSA).
ECDSA_BOUND = 2**251
# starknet-py's message_signature() passes seed=32 as RFC 6979 extra entropy; we match it.
STARKNET_PY_SEED = 32

STARK_CURVE = Curve("stark", FIELD_PRIME, ALPHA, BETA, EC_ORDER, GEN_X, GEN_Y)

_WINDOW_BITS = 8
_WINDOWS = 32  # 32 windows of 8 bits cover every scalar below EC_ORDER < 2**252


@dataclass(frozen=True)
class StarkSignature:
    r: int
    s: int

    def as_paradex(self) -> str:
        """The header/body form Paradex expects: a JSON list of two decimal strings."""
        return f'["{self.r}","{self.s}"]'


class StarkKey:
    """A Stark private key with its public key (the x coordinate). The secret never shows in repr."""

    __slots__ = ("_private", "public")

    def __init__(self, private_key: int | str):
        private = int(private_key, 16) if isinstance(private_key, str) else private_key
        if not 1 <= private < EC_ORDER:
            raise ValueError("Stark private key out of range")
        self._private = private
        self.public = public_key_of(private)

    def sign(self, msg_hash: int) -> StarkSignature:
        return sign(msg_hash, self._private)

    def __repr__(self) -> str:
        return f"StarkKey(public=0x{self.public:x}, private=***)"


# --- fixed-base multiplication ------------------------------------------------------------------


@functools.cache
def _generator_table() -> tuple[tuple[tuple[int, int] | None, ...], ...]:
    """table[i][d] = d * 2**(8i) * G in affine coordinates (index 0 is the point at infinity)."""
    rows = []
    base = STARK_CURVE.G
    for _ in range(_WINDOWS):
        row: list[tuple[int, int] | None] = [None]
        acc = base
        for _ in range(1, 1 << _WINDOW_BITS):
            row.append((acc.x, acc.y))
            acc = acc + base
        rows.append(tuple(row))
        base = acc  # 256 * previous base
    return tuple(rows)


def warm_up() -> None:
    """Build the generator table now (~0.1 s) rather than on the first signature."""
    _generator_table()


def _jacobian_double(x1: int, y1: int, z1: int) -> tuple[int, int, int]:
    p = FIELD_PRIME
    yy = y1 * y1 % p
    s = 4 * x1 * yy % p
    zz = z1 * z1 % p
    m = (3 * x1 * x1 + ALPHA * zz * zz) % p
    x3 = (m * m - 2 * s) % p
    y3 = (m * (s - x3) - 8 * yy * yy) % p
    return x3, y3, 2 * y1 * z1 % p


def generator_multiple_x(k: int) -> int:
    """x coordinate of k*G (0 < k < EC_ORDER), by mixed Jacobian + affine additions over the table."""
    p = FIELD_PRIME
    table = _generator_table()
    acc: tuple[int, int, int] | None = None
    for i in range(_WINDOWS):
        digit = (k >> (_WINDOW_BITS * i)) & 0xFF
        if not digit:
            continue
        point = table[i][digit]
        assert point is not None  # only digit 0 is the point at infinity
        x2, y2 = point
        if acc is None:
            acc = (x2, y2, 1)
            continue
        x1, y1, z1 = acc
        z1z1 = z1 * z1 % p
        h = (x2 * z1z1 - x1) % p
        r = (y2 * z1 * z1z1 - y1) % p
        if h == 0:
            if r != 0:  # P + (-P): the sum is infinity
                acc = None
                continue
            acc = _jacobian_double(x1, y1, z1)
            continue
        hh = h * h % p
        hhh = h * hh % p
        v = x1 * hh % p
        x3 = (r * r - hhh - 2 * v) % p
        y3 = (r * (v - x3) - y1 * hhh) % p
        acc = (x3, y3, z1 * h % p)
    if acc is None:
        raise ValueError("k*G is the point at infinity")
    x, _, z = acc
    return x * pow(z * z, -1, p) % p


# --- ECDSA ---------------------------------------------------------------------------------------


def _rfc6979_k(msg_hash: int, private_key: int, seed: int | None) -> int:
    # Same padding as starknet-py / cairo-lang (kept for consistency with elliptic.js):
    # a hash one nibble short of 252 bits is shifted by one nibble before feeding RFC 6979.
    if 1 <= msg_hash.bit_length() % 8 <= 4 and msg_hash.bit_length() >= 248:
        msg_hash *= 16
    extra = b"" if seed is None else seed.to_bytes(math.ceil(seed.bit_length() / 8), "big")
    data = msg_hash.to_bytes(math.ceil(msg_hash.bit_length() / 8), "big")
    k: int = generate_k(EC_ORDER, private_key, hashlib.sha256, data, extra_entropy=extra)
    return k


def sign(msg_hash: int, private_key: int, seed: int | None = STARKNET_PY_SEED) -> StarkSignature:
    """Stark ECDSA; equals starknet_py.hash.utils.message_signature(msg_hash, private_key)."""
    # 0 is refused too: RFC 6979 cannot encode it (starknet-py crashes on it the same way).
    if not 0 < msg_hash < ECDSA_BOUND:
        raise ValueError("message hash must be in [1, 2**251)")
    if not 1 <= private_key < EC_ORDER:
        raise ValueError("Stark private key out of range")
    while True:
        k = _rfc6979_k(msg_hash, private_key, seed)
        seed = 1 if seed is None else seed + 1
        r = generator_multiple_x(k)
        if not 1 <= r < ECDSA_BOUND:
            continue
        z_plus_rd = (msg_hash + r * private_key) % EC_ORDER
        if z_plus_rd == 0:
            continue
        w = k * pow(z_plus_rd, -1, EC_ORDER) % EC_ORDER
        if not 1 <= w < ECDSA_BOUND:
            continue
        return StarkSignature(r, pow(w, -1, EC_ORDER))


@functools.lru_cache(maxsize=256)
def _public_point(public_key: int) -> Point:
    rhs = (public_key**3 + ALPHA * public_key + BETA) % FIELD_PRIME
    y = sqrt_mod(rhs, FIELD_PRIME)
    if y is None:
        raise ValueError("public key is not the x coordinate of a curve point")
    return Point(public_key, y, STARK_CURVE)


def verify(msg_hash: int, signature: StarkSignature | tuple[int, int], public_key: int) -> bool:
    """cairo-lang's verify for an x-only public key (either y is accepted, as Starknet does)."""
    r, s = (signature.r, signature.s) if isinstance(signature, StarkSignature) else signature
    if not (1 <= r < ECDSA_BOUND and 1 <= s < EC_ORDER and 0 <= msg_hash < ECDSA_BOUND):
        return False
    w = pow(s, -1, EC_ORDER)
    if not 1 <= w < ECDSA_BOUND:
        return False
    try:
        q = _public_point(public_key)
    except ValueError:
        return False
    zg = STARK_CURVE.G * (msg_hash * w % EC_ORDER) if msg_hash else None
    rq = q * (r * w % EC_ORDER)
    for candidate in (rq, -rq):
        total = candidate if zg is None else zg + candidate
        if _x_or_none(total) == r:
            return True
    return False


def _x_or_none(point: Point) -> int | None:
    try:
        return point.x
    except Exception:  # the point at infinity has no affine x
        return None


@functools.lru_cache(maxsize=64)
def public_key_of(private_key: int) -> int:
    return generator_multiple_x(private_key)


# --- Paradex keys and addresses ------------------------------------------------------------------


def grind_key(key_seed: int, key_value_limit: int = EC_ORDER) -> int:
    """StarkWare's key grinding: sha256(seed || index) until uniform below the limit, then mod."""
    max_allowed = 2**256 - (2**256 % key_value_limit)

    def indexed_sha256(index: int) -> int:
        def padded(x: int) -> str:
            h = f"{x:x}"
            return h if len(h) % 2 == 0 else "0" + h

        return int(hashlib.sha256(bytes.fromhex(padded(key_seed) + padded(index))).hexdigest(), 16)

    index = 0
    key = indexed_sha256(index)
    while key >= max_allowed:
        index += 1
        key = indexed_sha256(index)
    return key % key_value_limit


def stark_key_typed_data(l1_chain_id: int) -> dict[str, Any]:
    return {
        "domain": {"name": "Paradex", "chainId": l1_chain_id, "version": "1"},
        "primaryType": "Constant",
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "Constant": [{"name": "action", "type": "string"}],
        },
        "message": {"action": "STARK Key"},
    }


def stark_private_key_from_eth(eth_private_key: str | bytes, l1_chain_id: int) -> int:
    """Paradex's derivation: EIP-712 sign "STARK Key" with the L1 key, grind the signature's r."""
    signed = Account.sign_message(encode_typed_data(full_message=stark_key_typed_data(l1_chain_id)), eth_private_key)
    return grind_key(signed.r, EC_ORDER)


def paradex_account_address(public_key: int, account_hash: int, account_proxy_hash: int) -> int:
    calldata = [account_hash, get_selector_from_name("initialize"), 2, public_key, 0]
    return compute_address(
        class_hash=account_proxy_hash, constructor_calldata=calldata, salt=public_key, deployer_address=0
    )


# --- SNIP-12 (revision 0) hashing for Paradex ----------------------------------------------------


def hash_chain(values: list[int] | tuple[int, ...], start: int = 0, count: int | None = None) -> int:
    """Pedersen chain h(h(h(start, v0), v1) ..., n); `start`/`count` let callers resume a prefix."""
    acc = start
    for v in values:
        acc = pedersen_hash(acc, v)
    return pedersen_hash(acc, len(values) if count is None else count)


@functools.lru_cache(maxsize=1024)
def felt_of(text: str) -> int:
    """Cairo short string (≤ 31 ASCII bytes) as a felt."""
    if len(text) > 31 or not text.isascii():
        raise ValueError(f"not a Cairo short string: {text!r}")
    return encode_shortstring(text)


def scaled_felt(value: Decimal, decimals: int = 8) -> int:
    """value × 10^8 as an exact integer. Refuses more decimals than the chain keeps, rather than
    truncating as paradex-py does (that would sign a different size than the one sent)."""
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value() or scaled < 0:
        raise ValueError(f"{value} does not fit {decimals} decimals as a non-negative integer")
    return int(scaled)


DOMAIN_TYPE_HASH = get_selector_from_name("StarkNetDomain(name:felt,chainId:felt,version:felt)")
ORDER_TYPE_HASH = get_selector_from_name(
    "Order(timestamp:felt,market:felt,side:felt,orderType:felt,size:felt,price:felt)"
)
REQUEST_TYPE_HASH = get_selector_from_name("Request(method:felt,path:felt,body:felt,timestamp:felt,expiration:felt)")
CONSTANT_TYPE_HASH = get_selector_from_name("Constant(action:felt)")
STARKNET_MESSAGE = felt_of("StarkNet Message")
SIDE_FELT = {"BUY": 1, "SELL": 2}


@dataclass(frozen=True)
class ParadexHasher:
    """Message hashes for one (chain, account), with the constant prefixes precomputed."""

    chain_id: str  # e.g. "PRIVATE_SN_PARACLEAR_MAINNET" from GET /system/config
    account: int
    _domain_hash: int = field(init=False, repr=False)
    _message_prefix: int = field(init=False, repr=False)
    _order_prefix: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        domain = hash_chain([DOMAIN_TYPE_HASH, felt_of("Paradex"), _chain_felt(self.chain_id), 1])
        object.__setattr__(self, "_domain_hash", domain)
        prefix = pedersen_hash(pedersen_hash(pedersen_hash(0, STARKNET_MESSAGE), domain), self.account)
        object.__setattr__(self, "_message_prefix", prefix)
        object.__setattr__(self, "_order_prefix", pedersen_hash(0, ORDER_TYPE_HASH))

    @property
    def domain_hash(self) -> int:
        return self._domain_hash

    def message_hash(self, struct_hash: int) -> int:
        return pedersen_hash(pedersen_hash(self._message_prefix, struct_hash), 4)

    def order_struct_hash(
        self, timestamp_ms: int, market: str, side: str, order_type: str, size: int, price: int
    ) -> int:
        fields = (timestamp_ms, felt_of(market), SIDE_FELT[side], felt_of(order_type), size, price)
        return hash_chain(fields, start=self._order_prefix, count=7)

    def order_hash(
        self, timestamp_ms: int, market: str, side: str, order_type: str, size: Decimal, price: Decimal
    ) -> int:
        """Hash of the Order typed data; size and price are plain decimals (scaled ×10^8 here)."""
        return self.message_hash(
            self.order_struct_hash(timestamp_ms, market, side, order_type, scaled_felt(size), scaled_felt(price))
        )

    def auth_hash(self, timestamp_s: int, expiration_s: int) -> int:
        struct = hash_chain([REQUEST_TYPE_HASH, felt_of("POST"), felt_of("/v1/auth"), 0, timestamp_s, expiration_s])
        return self.message_hash(struct)

    def onboarding_hash(self) -> int:
        return self.message_hash(hash_chain([CONSTANT_TYPE_HASH, felt_of("Onboarding")]))


def _chain_felt(chain_id: str) -> int:
    return int(chain_id, 16) if chain_id.startswith("0x") else felt_of(chain_id)
