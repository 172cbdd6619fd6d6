"""Paradex perps adapter: JWT auth and SNIP-12 order signatures with the fast Stark signer.

ref/EXCHANGES.md §5. Each order carries its own Stark signature over the `Order` typed data
(timestamp in ms, size/price × 10^8, side 1/2, market/type as short strings). A MARKET order's
signature covers (timestamp, market, side, MARKET, size, 0) only — not the client id, flags or
instruction — so `PresignedPool` keeps a few signed MARKET orders of the configured size per side:
a detection sends one without hashing or signing. Validity assumption: the venue accepts a
signature up to `recv_window` ms after its signature_timestamp; we send recv_window explicitly and
discard pooled orders older than half of it.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import websockets

from core.exchanges import errors
from core.exchanges.perp.book import BookFeed, OnBook, OrderBook, Side, parse_levels
from core.exchanges.perp.stark import ParadexHasher, StarkKey, StarkSignature
from core.exchanges.perp.venue import (
    JsonHttp,
    PerpAccount,
    PerpOrderRequest,
    PerpOrderResult,
    PerpPosition,
    PerpVenue,
)

log = logging.getLogger(__name__)

VENUE = "paradex"
PROD_REST = "https://api.prod.paradex.trade/v1"
PROD_WS = "wss://ws.api.prod.paradex.trade/v1"
JWT_REFRESH_S = 180  # JWTs live 5 minutes
AUTH_EXPIRY_S = 1800
RECV_WINDOW_MS = 60_000

ERROR_CODES: dict[str, type[errors.ExchangeError]] = {
    "INVALID_TOKEN": errors.AuthError,
    "INVALID_STARKNET_SIGNATURE": errors.AuthError,
    "INVALID_SIGNATURE": errors.AuthError,
    "UNAUTHORIZED": errors.AuthError,
    "NOT_ENOUGH_MARGIN": errors.InsufficientFunds,
    "INSUFFICIENT_MARGIN": errors.InsufficientFunds,
    "ORDER_NOT_FOUND": errors.OrderNotFound,
    "RATE_LIMITED": errors.RateLimited,
}


def raise_for_error(status: int, body: Any) -> None:
    if status < 400:
        return
    detail = body if isinstance(body, dict) else {}
    code = str(detail.get("error") or status)
    message = str(detail.get("message") or f"HTTP {status}")
    if status >= 500:
        raise errors.Unavailable(message, venue=VENUE, code=code)
    if status == 429:
        raise errors.RateLimited(message, venue=VENUE, code=code)
    if status == 401:
        raise errors.AuthError(message, venue=VENUE, code=code)
    raise ERROR_CODES.get(code, errors.OrderNotFound if status == 404 else errors.InvalidOrder)(
        message, venue=VENUE, code=code
    )


def parse_book_frame(raw: str | bytes) -> dict[str, Any] | None:
    """The `data` of an order_book subscription frame, levels parsed; None for other frames."""
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.MalformedResponse(f"non-JSON websocket frame {raw[:60]!r}", venue=VENUE) from exc
    if not isinstance(msg, dict):
        raise errors.MalformedResponse("websocket frame is not an object", venue=VENUE)
    if "error" in msg:
        raise errors.ExchangeError(str(msg["error"])[:200], venue=VENUE)
    params = msg.get("params")
    if msg.get("method") != "subscription" or not isinstance(params, dict):
        return None
    if not str(params.get("channel", "")).startswith("order_book."):
        return None
    data: Any = params.get("data")  # untrusted JSON: a wrong shape is a TypeError / KeyError below
    try:
        update_type, seq = data["update_type"], int(data["seq_no"])
        changed = (data.get("inserts") or []) + (data.get("updates") or [])
        deleted = data.get("deletes") or []
        # The whole frame in one parse_levels call; a delete's size is whatever the venue sent, we need 0.
        levels = parse_levels(
            [[row["price"], row["size"]] for row in changed] + [[row["price"], "0"] for row in deleted], venue=VENUE
        )
        sides = [row["side"] for row in changed] + [row["side"] for row in deleted]
    except (KeyError, TypeError, ValueError) as exc:
        raise errors.MalformedResponse(f"bad order_book frame {str(data)[:100]}", venue=VENUE) from exc
    bids = [level for side, level in zip(sides, levels, strict=True) if side == "BUY"]
    asks = [level for side, level in zip(sides, levels, strict=True) if side == "SELL"]
    if len(bids) + len(asks) != len(levels):
        raise errors.MalformedResponse(f"order_book level without a BUY/SELL side {str(data)[:100]}", venue=VENUE)
    if update_type not in ("s", "d"):
        raise errors.MalformedResponse(f"unknown update_type {update_type!r}", venue=VENUE)
    return {
        "market": data.get("market"),
        "snapshot": update_type == "s",
        "seq": seq,
        "bids": bids,
        "asks": asks,
        "ts": data.get("last_updated_at"),
    }


@dataclass(frozen=True)
class SignedOrder:
    timestamp_ms: int
    market: str
    side: Side
    order_type: str
    size: Decimal
    price: Decimal
    signature: StarkSignature


class ParadexSigner:
    """Order/auth/onboarding signatures for one account. ~2 ms hash + ~0.25 ms sign per order."""

    def __init__(self, private_key: int | str, account: int | str, chain_id: str):
        self.key = StarkKey(private_key)
        self.account = int(account, 16) if isinstance(account, str) else account
        self.hasher = ParadexHasher(chain_id, self.account)
        self._last_ts = 0

    def __repr__(self) -> str:
        return f"ParadexSigner(account=0x{self.account:x}, key=***)"

    def _timestamp(self) -> int:
        # The signature timestamp acts as a nonce: keep it unique even within one millisecond.
        self._last_ts = max(int(time.time() * 1000), self._last_ts + 1)
        return self._last_ts

    def sign_order(self, market: str, side: Side, order_type: str, size: Decimal, price: Decimal | None) -> SignedOrder:
        ts = self._timestamp()
        signed_price = price if order_type == "LIMIT" and price is not None else Decimal(0)
        digest = self.hasher.order_hash(ts, market, side, order_type, size, signed_price)
        return SignedOrder(ts, market, side, order_type, size, signed_price, self.key.sign(digest))

    def auth_headers(self, now_s: int | None = None) -> dict[str, str]:
        now = int(time.time()) if now_s is None else now_s
        sig = self.key.sign(self.hasher.auth_hash(now, now + AUTH_EXPIRY_S))
        return {
            "PARADEX-STARKNET-ACCOUNT": f"0x{self.account:x}",
            "PARADEX-STARKNET-SIGNATURE": sig.as_paradex(),
            "PARADEX-TIMESTAMP": str(now),
            "PARADEX-SIGNATURE-EXPIRATION": str(now + AUTH_EXPIRY_S),
        }

    def onboarding_headers(self, eth_address: str) -> dict[str, str]:
        sig = self.key.sign(self.hasher.onboarding_hash())
        return {
            "PARADEX-ETHEREUM-ACCOUNT": eth_address,
            "PARADEX-STARKNET-ACCOUNT": f"0x{self.account:x}",
            "PARADEX-STARKNET-SIGNATURE": sig.as_paradex(),
        }


class PresignedPool:
    """A few signed MARKET orders of one size per side, refilled off the hot path."""

    def __init__(
        self, signer: ParadexSigner, market: str, size: Decimal, depth: int = 3, max_age_ms: int = RECV_WINDOW_MS // 2
    ):
        self.signer, self.market, self.size, self.depth, self.max_age_ms = signer, market, size, depth, max_age_ms
        self._orders: dict[Side, deque[SignedOrder]] = {"BUY": deque(), "SELL": deque()}

    def refill(self, max_age_ms: int | None = None) -> int:
        """Drop entries older than `max_age_ms` (default: the age `take` refuses) and top both sides up;
        returns how many were signed. Renewing at a younger age keeps entries usable between refills."""
        signed = 0
        now = int(time.time() * 1000)
        oldest = self.max_age_ms if max_age_ms is None else max_age_ms
        for side, queue in self._orders.items():
            while queue and now - queue[0].timestamp_ms > oldest:
                queue.popleft()
            while len(queue) < self.depth:
                queue.append(self.signer.sign_order(self.market, side, "MARKET", self.size, None))
                signed += 1
        return signed

    def take(self, market: str, side: Side, size: Decimal) -> SignedOrder | None:
        if market != self.market or size != self.size:
            return None
        queue = self._orders[side]
        now = int(time.time() * 1000)
        while queue:
            order = queue.popleft()
            if now - order.timestamp_ms <= self.max_age_ms:
                return order
        return None

    def available(self, side: Side) -> int:
        return len(self._orders[side])


def order_body(signed: SignedOrder, req: PerpOrderRequest, recv_window_ms: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "market": signed.market,
        "side": signed.side,
        "type": signed.order_type,
        "size": format(signed.size.normalize(), "f"),
        "client_id": req.client_id,
        "instruction": "IOC" if req.time_in_force == "IOC" or signed.order_type == "MARKET" else "GTC",
        "signature": signed.signature.as_paradex(),
        "signature_timestamp": signed.timestamp_ms,
        "recv_window": recv_window_ms,
    }
    if signed.order_type == "LIMIT":
        body["price"] = format(signed.price.normalize(), "f")
    if req.reduce_only:
        body["flags"] = ["REDUCE_ONLY"]
    return body


class ParadexVenue(PerpVenue):
    name = VENUE

    def __init__(self, *, rest_url: str, ws_url: str, signer: ParadexSigner, recv_window_ms: int = RECV_WINDOW_MS):
        self._http = JsonHttp(rest_url, VENUE)
        self.ws_url = ws_url
        self.signer = signer
        self.recv_window_ms = recv_window_ms
        self._jwt: str | None = None
        self._jwt_at = 0.0
        self.pools: list[PresignedPool] = []
        self._ws_ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"ParadexVenue(account=0x{self.signer.account:x}, jwt=***)"

    def add_presigned_pool(self, market: str, size: Decimal, depth: int = 3) -> PresignedPool:
        pool = PresignedPool(self.signer, market, size, depth, max_age_ms=self.recv_window_ms // 2)
        pool.refill()
        self.pools.append(pool)
        return pool

    async def onboard(self, eth_address: str) -> None:
        status, reply = await self._http.request(
            "POST",
            "/onboarding",
            body={"public_key": f"0x{self.signer.key.public:x}"},
            headers=self.signer.onboarding_headers(eth_address),
        )
        raise_for_error(status, reply)

    async def authenticate(self) -> str:
        status, reply = await self._http.request(
            "POST", f"/auth/0x{self.signer.key.public:x}", headers=self.signer.auth_headers()
        )
        raise_for_error(status, reply)
        if not isinstance(reply, dict) or not isinstance(reply.get("jwt_token"), str):
            raise errors.MalformedResponse("auth reply without jwt_token", venue=VENUE)
        self._jwt, self._jwt_at = reply["jwt_token"], time.monotonic()
        return self._jwt

    async def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        if self._jwt is None or time.monotonic() - self._jwt_at > JWT_REFRESH_S:
            await self.authenticate()
        status, reply = await self._http.request(
            method, path, params=params, body=body, headers={"Authorization": f"Bearer {self._jwt}"}
        )
        raise_for_error(status, reply)
        return reply

    async def markets(self) -> set[str]:
        status, reply = await self._http.request("GET", "/markets")
        raise_for_error(status, reply)
        rows = reply.get("results") if isinstance(reply, dict) else None
        if not isinstance(rows, list):
            raise errors.MalformedResponse(f"markets without results: {reply!r:.100}", venue=VENUE)
        return {row["symbol"] for row in rows if isinstance(row, dict) and isinstance(row.get("symbol"), str)}

    def _signed_for(self, req: PerpOrderRequest) -> SignedOrder:
        if req.order_type == "MARKET":
            for pool in self.pools:
                signed = pool.take(req.market, req.side, req.size)
                if signed is not None:
                    return signed
        return self.signer.sign_order(req.market, req.side, req.order_type, req.size, req.price)

    def prepare(self, req: PerpOrderRequest) -> dict[str, Any]:
        """The signed body (from the presigned pool when it has one), so that a caller can sign ahead."""
        return order_body(self._signed_for(req), req, self.recv_window_ms)

    async def send_prepared(self, req: PerpOrderRequest, body: dict[str, Any]) -> PerpOrderResult:
        reply = await self._call("POST", "/orders", body=body)
        for pool in self.pools:  # refill after sending, never before
            pool.refill()
        return _order_result(reply)

    async def keep_ready(self) -> None:
        await super().keep_ready()
        if self._jwt is None or time.monotonic() - self._jwt_at > JWT_REFRESH_S / 2:
            await self.authenticate()  # refreshed here, a trade never waits for it
        for pool in self.pools:  # renewed at half their usable age: a trade never finds them expired
            pool.refill(max_age_ms=pool.max_age_ms // 2)

    async def get_order(self, order_id: str) -> PerpOrderResult:
        return _order_result(await self._call("GET", f"/orders/{order_id}"))

    async def cancel_order(self, order_id: str) -> None:
        await self._call("DELETE", f"/orders/{order_id}")

    async def open_orders(self) -> list[PerpOrderResult]:
        reply = await self._call("GET", "/orders")
        return [_order_result(row) for row in _results(reply)]

    async def positions(self) -> list[PerpPosition]:
        out = []
        for row in _results(await self._call("GET", "/positions")):
            try:
                size = Decimal(str(row["size"]))
                entry, liquidation = row.get("average_entry_price"), row.get("liquidation_price")
                funding = row.get("realized_positional_funding_pnl")
                out.append(
                    PerpPosition(
                        VENUE,
                        row["market"],
                        size if row.get("side", "LONG") == "LONG" else -abs(size),
                        Decimal(str(entry)) if entry not in (None, "") else None,
                        Decimal(str(row.get("unrealized_pnl") or 0)),
                        Decimal(str(liquidation)) if liquidation not in (None, "") else None,
                        Decimal(str(funding)) if funding not in (None, "") else None,
                    )
                )
            except (KeyError, TypeError, ArithmeticError, ValueError) as exc:
                raise errors.MalformedResponse(f"bad position {row!r:.100}", venue=VENUE) from exc
        return [p for p in out if p.size != 0]

    async def account(self) -> PerpAccount:
        raw = await self._call("GET", "/account")
        try:
            maintenance = raw.get("maintenance_margin_requirement")
            return PerpAccount(
                VENUE,
                Decimal(str(raw["account_value"])),
                Decimal(str(raw["free_collateral"])),
                Decimal(str(maintenance)) if maintenance not in (None, "") else None,
            )
        except (KeyError, TypeError, ArithmeticError, ValueError) as exc:
            raise errors.MalformedResponse("account reply lacks account_value/free_collateral", venue=VENUE) from exc

    async def connect_book(self, market: str, on_book: OnBook | None = None) -> BookFeed:
        return BookFeed(OrderBook(VENUE, market), self._book_session, on_book)

    async def _book_session(self, book: OrderBook, notify: Callable[[], Awaitable[None]]) -> None:
        async with websockets.connect(self.ws_url, open_timeout=5) as ws:
            channel = f"order_book.{book.market}.deltas@15@50ms"
            await ws.send(
                json.dumps(
                    {"jsonrpc": "2.0", "method": "subscribe", "params": {"channel": channel}, "id": next(self._ws_ids)}
                )
            )
            async for raw in ws:
                frame = parse_book_frame(raw)
                if frame is None or frame["market"] != book.market:
                    continue
                if frame["snapshot"]:
                    applied = book.apply_snapshot(frame["bids"], frame["asks"], frame["seq"], frame["ts"])
                else:
                    applied = book.apply_delta(frame["bids"], frame["asks"], frame["seq"], frame["ts"])
                if applied:
                    await notify()

    async def close(self) -> None:
        await self._http.close()


def _results(reply: Any) -> list[Any]:
    rows = reply.get("results") if isinstance(reply, dict) else reply
    if not isinstance(rows, list):
        raise errors.MalformedResponse("expected {'results': [...]}", venue=VENUE)
    return rows


def _order_result(row: Any) -> PerpOrderResult:
    try:
        size, remaining = Decimal(str(row["size"])), Decimal(str(row.get("remaining_size", row["size"])))
        avg = row.get("avg_fill_price")
        status = str(row["status"])
        if status == "CLOSED":
            status = "FILLED" if remaining == 0 else ("CANCELLED" if remaining == size else "PARTIALLY_FILLED")
        return PerpOrderResult(
            VENUE,
            str(row["id"]),
            str(row.get("client_id", "")),
            status,
            size - remaining,
            Decimal(str(avg)) if avg not in (None, "") else None,
            raw=row,
        )
    except (KeyError, TypeError, ArithmeticError, ValueError) as exc:
        raise errors.MalformedResponse(f"bad order {row!r:.100}", venue=VENUE) from exc
