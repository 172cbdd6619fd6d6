"""Vest protocol face of the perp simulator: REST /v2 + /ws-api depth, verifying signatures like Vest.

An order is accepted only if the EIP-191 signature over its ABI-encoded fields recovers to the
signing address registered for the API key, its time is within recvWindow and its nonce is new.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from decimal import Decimal, InvalidOperation

from aiohttp import WSMsgType, web

from core.exchanges.perp import vest
from sim.perp.face import FaceServer
from sim.perp.ledger import BASE_PRICES, CorrelatedMarket, SimAccount, SimOrder

SYMBOLS = {f"{base}-PERP": base for base in BASE_PRICES}


def _error(code: int, msg: str, status: int = 400) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


class VestFace(FaceServer):
    venue = "vest"

    def __init__(self, market: CorrelatedMarket, verifying_contract: str = vest.DEV_ROUTER):
        super().__init__(market)
        self.verifying_contract = verifying_contract
        self.keys: dict[str, str] = {}  # apiKey -> signing address
        self.nonces: dict[str, int] = {}
        self.app.add_routes(
            [
                web.post("/v2/register", self.register),
                web.get("/v2/exchangeInfo", self.exchange_info),
                web.get("/v2/depth", self.depth),
                web.get("/v2/account", self.account),
                web.post("/v2/orders", self.place),
                web.get("/v2/orders", self.list_orders),
                web.post("/v2/orders/cancel", self.cancel),
                web.get("/ws-api", self.ws),
            ]
        )

    def add_account(self, api_key: str, signing_addr: str, cash: Decimal = Decimal(100_000)) -> None:
        self.keys[api_key] = signing_addr.lower()
        self.ledger.accounts.setdefault(api_key, SimAccount(cash))

    def account_by_public_id(self, public_id: str) -> str | None:
        return next((key for key, address in self.keys.items() if address == public_id.lower()), None)

    def _book(self, symbol: str):
        return self.ledger.book(SYMBOLS[symbol])

    async def register(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            signer = vest.recover_signer_proof(
                body["signingAddr"], int(body["expiryTime"]), self.verifying_contract, body["signature"]
            )
        except (KeyError, ValueError, TypeError):
            return _error(1022, "INVALID_SIGNATURE")
        if signer != str(body["primaryAddr"]).lower():
            return _error(1022, "INVALID_SIGNATURE")
        api_key = secrets.token_hex(16)
        self.add_account(api_key, body["signingAddr"])
        return web.json_response({"apiKey": api_key, "accGroup": 0})

    async def exchange_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "symbols": [
                    {
                        "symbol": s,
                        "base": b,
                        "quote": "USDC",
                        "sizeDecimals": 4,
                        "priceDecimals": 2,
                        "takerFee": "0.0001",
                    }
                    for s, b in SYMBOLS.items()
                ]
            }
        )

    async def depth(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "")
        if symbol not in SYMBOLS:
            return _error(1100, "UNKNOWN_SYMBOL")
        bids, asks = self._book(symbol)
        return web.json_response(
            {"bids": [[str(p), str(s)] for p, s in bids], "asks": [[str(p), str(s)] for p, s in asks]}
        )

    def _api_key(self, request: web.Request) -> str | None:
        key = request.headers.get("X-API-KEY", "")
        return key if key in self.keys else None

    async def account(self, request: web.Request) -> web.Response:
        key = self._api_key(request)
        if key is None:
            return _error(1002, "UNAUTHORIZED", 401)
        acct = self.ledger.accounts[key]
        positions = [
            {
                "symbol": f"{m}-PERP",
                "isLong": size > 0,
                "size": str(abs(size)),
                "entryPrice": str(entry),
                "unrealizedPnl": str(size * (self.ledger.market.mid("vest", m) - entry)),
                "liqPrice": str(self.ledger.liquidation_price(key, m) or ""),
                "settledFunding": str(acct.funding.get(m, 0)),
            }
            for m, (size, entry) in acct.positions.items()
            if size
        ]
        equity = self.ledger.equity(key)
        return web.json_response(
            {
                "balances": [{"asset": "USDC", "total": str(acct.cash), "locked": "0"}],
                "collateral": str(acct.cash),
                "withdrawable": str(equity),
                "totalAccountValue": str(equity),
                "maintMargin": str(self.ledger.maintenance(key)),
                "positions": positions,
                "time": int(time.time() * 1000),
            }
        )

    def _check_signed(self, key: str, body: dict, digest_of) -> web.Response | dict:
        order = body.get("order")
        if not isinstance(order, dict) or not isinstance(body.get("signature"), str):
            return _error(1000, "BAD_REQUEST")
        try:
            signer = vest.recover_signer(digest_of(order), body["signature"])
            recv_window = int(body.get("recvWindow", vest.RECV_WINDOW_MS))
            sent, nonce = int(order["time"]), int(order["nonce"])
        except (KeyError, ValueError, TypeError, OverflowError):
            return _error(1022, "INVALID_SIGNATURE")
        if signer != self.keys[key]:
            return _error(1022, "INVALID_SIGNATURE")
        if not 0 < recv_window <= 60_000:
            return _error(1131, "BAD_RECV_WINDOW")
        if int(time.time() * 1000) > sent + recv_window:
            return _error(1132, "ORDER_EXPIRED")
        if nonce <= self.nonces.get(key, 0):
            return _error(1023, "INVALID_NONCE")
        self.nonces[key] = nonce
        return order

    async def place(self, request: web.Request) -> web.Response:
        key = self._api_key(request)
        if key is None:
            return _error(1002, "UNAUTHORIZED", 401)
        try:
            body = await request.json()
        except ValueError:
            return _error(1000, "BAD_REQUEST")
        order = self._check_signed(key, body, vest.order_digest) if isinstance(body, dict) else _error(1000, "BAD")
        if isinstance(order, web.Response):
            return order
        if self.take_reject():
            return _error(3001, "PRICE_CHECK_FAILED")
        try:
            size, limit = Decimal(order["size"]), Decimal(order["limitPrice"])
            market = SYMBOLS[order["symbol"]]
        except (KeyError, InvalidOperation, TypeError):
            return _error(1111, "BAD_DECIMALS")
        if size <= 0 or size.as_tuple().exponent < -4:
            return _error(1111, "BAD_DECIMALS")
        sim = SimOrder(
            "0x" + self.ledger.next_id(),
            key,
            market,
            "BUY" if order["isBuy"] else "SELL",
            size,
            limit,
            order["orderType"],
            str(order["nonce"]),
            reduce_only=bool(order["reduceOnly"]),
        )
        self.ledger.execute(sim)
        sim.client_id = str(order["nonce"])
        await self.reply_faults()
        return web.json_response({"id": sim.id})

    async def list_orders(self, request: web.Request) -> web.Response:
        key = self._api_key(request)
        if key is None:
            return _error(1002, "UNAUTHORIZED", 401)
        ids = set(filter(None, request.query.get("id", "").split(",")))
        status = request.query.get("status")
        rows = [
            {
                "id": o.id,
                "nonce": int(o.client_id or 0),
                "symbol": f"{o.market}-PERP",
                "isBuy": o.side == "BUY",
                "size": str(o.size),
                "status": {"OPEN": "NEW"}.get(o.status, o.status),
                "lastFilledSize": str(o.filled),
                "avgFilledPrice": str(o.avg_price) if o.avg_price else None,
            }
            for o in self.ledger.orders.values()
            if o.account == key and (not ids or o.id in ids)
        ]
        if status:
            rows = [r for r in rows if r["status"] == status]
        return web.json_response(rows)

    async def cancel(self, request: web.Request) -> web.Response:
        key = self._api_key(request)
        if key is None:
            return _error(1002, "UNAUTHORIZED", 401)
        body = await request.json()
        order = self._check_signed(key, body, vest.cancel_digest)
        if isinstance(order, web.Response):
            return order
        sim = self.ledger.orders.get(order.get("id"))
        if sim is None or sim.account != key or sim.status not in ("OPEN", "PARTIALLY_FILLED"):
            return _error(3017, "ORDER_NOT_FOUND")
        sim.status = "CANCELLED"
        return web.json_response({"id": sim.id})

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.add(ws)
        subscribed: set[str] = set()
        pusher = asyncio.create_task(self._push_depth(ws, subscribed))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                except ValueError:
                    continue
                if req.get("method") == "PING":
                    await ws.send_json({"data": "PONG"})
                elif req.get("method") == "SUBSCRIBE":
                    subscribed.update(c for c in req.get("params", []) if c.removesuffix("@depth") in SYMBOLS)
                    await ws.send_json({"result": None, "id": req.get("id")})
        finally:
            pusher.cancel()
            self.sockets.discard(ws)
        return ws

    async def _push_depth(self, ws: web.WebSocketResponse, subscribed: set[str]) -> None:
        while not ws.closed:
            if self.take_drop_ws():
                await ws.close()
                return
            for channel in list(subscribed):
                bids, asks = self._book(channel.removesuffix("@depth"))
                await ws.send_json(
                    {
                        "channel": channel,
                        "data": {
                            "bids": [[str(p), str(s)] for p, s in bids],
                            "asks": [[str(p), str(s)] for p, s in asks],
                        },
                    }
                )
            await asyncio.sleep(0.1)
