"""Paradex protocol face of the perp simulator: REST /v1 with JWT auth + JSON-RPC websocket books.

Auth and orders are verified like Paradex: the Stark signature over the SNIP-12 Request/Order hash
must verify against the account's registered public key; an order's signature_timestamp must be
within its recv_window and unique. Books go out as one snapshot ("s") then deltas ("d") with
consecutive seq_no; a fault can skip a number to exercise the client's resync.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from decimal import Decimal, InvalidOperation

from aiohttp import WSMsgType, web

from core.exchanges.perp import stark
from sim.perp.face import FaceServer
from sim.perp.ledger import BASE_PRICES, CorrelatedMarket, SimAccount, SimOrder

CHAIN_ID = "PRIVATE_SN_PARACLEAR_SIM"
MARKETS = {f"{base}-USD-PERP": base for base in BASE_PRICES}
JWT_TTL_S = 300


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _signature(text: str) -> tuple[int, int] | None:
    try:
        r, s = (int(x) for x in json.loads(text))
        return r, s
    except (ValueError, TypeError):
        return None


class ParadexFace(FaceServer):
    venue = "paradex"

    def __init__(self, market: CorrelatedMarket):
        super().__init__(market)
        self.public_keys: dict[int, int] = {}  # account address -> Stark public key
        self.jwts: dict[str, tuple[int, float]] = {}  # token -> (account, expiry)
        self.used_timestamps: set[tuple[int, int]] = set()
        self.app.add_routes(
            [
                web.get("/v1/system/config", self.config),
                web.get("/v1/system/time", self.server_time),
                web.get("/v1/markets", self.markets),
                web.post("/v1/onboarding", self.onboarding),
                web.post("/v1/auth/{public_key}", self.auth),
                web.get("/v1/account", self.account),
                web.get("/v1/positions", self.positions),
                web.post("/v1/orders", self.place),
                web.get("/v1/orders", self.open_orders),
                web.get("/v1/orders/{id}", self.get_order),
                web.delete("/v1/orders/{id}", self.cancel),
                web.get("/v1/ws", self.ws),
            ]
        )

    def add_account(self, address: int, public_key: int, cash: Decimal = Decimal(100_000)) -> None:
        self.public_keys[address] = public_key
        self.ledger.accounts.setdefault(str(address), SimAccount(cash))

    def account_by_public_id(self, public_id: str) -> str | None:
        try:
            account = str(int(public_id, 16))
        except ValueError:
            return None
        return account if account in self.ledger.accounts else None

    async def config(self, request: web.Request) -> web.Response:
        return web.json_response({"starknet_chain_id": CHAIN_ID, "paraclear_decimals": 8})

    async def markets(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"results": [{"symbol": m, "base_currency": b, "quote_currency": "USD"} for m, b in MARKETS.items()]}
        )

    async def server_time(self, request: web.Request) -> web.Response:
        return web.json_response({"server_time": str(int(time.time() * 1000))})

    async def onboarding(self, request: web.Request) -> web.Response:
        try:
            account = int(request.headers["PARADEX-STARKNET-ACCOUNT"], 16)
            public = int((await request.json())["public_key"], 16)
            sig = _signature(request.headers["PARADEX-STARKNET-SIGNATURE"])
        except (KeyError, ValueError, TypeError):
            return _error(400, "VALIDATION_ERROR", "missing onboarding headers or public_key")
        digest = stark.ParadexHasher(CHAIN_ID, account).onboarding_hash()
        if sig is None or not stark.verify(digest, sig, public):
            return _error(400, "INVALID_STARKNET_SIGNATURE", "onboarding signature does not verify")
        self.add_account(account, public)
        return web.json_response({})

    async def auth(self, request: web.Request) -> web.Response:
        try:
            account = int(request.headers["PARADEX-STARKNET-ACCOUNT"], 16)
            ts, expiry = int(request.headers["PARADEX-TIMESTAMP"]), int(request.headers["PARADEX-SIGNATURE-EXPIRATION"])
            sig = _signature(request.headers["PARADEX-STARKNET-SIGNATURE"])
        except (KeyError, ValueError):
            return _error(400, "VALIDATION_ERROR", "missing auth headers")
        public = self.public_keys.get(account)
        if public is None:
            return _error(401, "NOT_ONBOARDED", "account is not onboarded")
        digest = stark.ParadexHasher(CHAIN_ID, account).auth_hash(ts, expiry)
        if sig is None or not stark.verify(digest, sig, public) or expiry < time.time():
            return _error(401, "INVALID_STARKNET_SIGNATURE", "auth signature does not verify")
        token = secrets.token_urlsafe(24)
        self.jwts[token] = (account, time.time() + JWT_TTL_S)
        return web.json_response({"jwt_token": token})

    def _account_of(self, request: web.Request) -> int | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        account, expiry = self.jwts.get(token, (None, 0.0))
        return account if expiry > time.time() else None

    async def account(self, request: web.Request) -> web.Response:
        account = self._account_of(request)
        if account is None:
            return _error(401, "INVALID_TOKEN", "bad or expired token")
        equity, maintenance = self.ledger.equity(str(account)), self.ledger.maintenance(str(account))
        return web.json_response(
            {
                "account": hex(account),
                "account_value": str(equity),
                "free_collateral": str(equity),
                "maintenance_margin_requirement": str(maintenance),
                "margin_cushion": str(equity - maintenance),
            }
        )

    async def positions(self, request: web.Request) -> web.Response:
        account = self._account_of(request)
        if account is None:
            return _error(401, "INVALID_TOKEN", "bad or expired token")
        rows = [
            {
                "market": f"{m}-USD-PERP",
                "side": "LONG" if size > 0 else "SHORT",
                "size": str(size),
                "average_entry_price": str(entry),
                "liquidation_price": str(self.ledger.liquidation_price(str(account), m) or ""),
                "realized_positional_funding_pnl": str(self.ledger.accounts[str(account)].funding.get(m, 0)),
                "status": "OPEN",
            }
            for m, (size, entry) in self.ledger.accounts[str(account)].positions.items()
            if size
        ]
        return web.json_response({"results": rows})

    def _verify_order(self, account: int, body: dict) -> web.Response | None:
        try:
            ts, market, side, kind = int(body["signature_timestamp"]), body["market"], body["side"], body["type"]
            size = Decimal(body["size"])
            price = Decimal(body.get("price") or "0") if kind != "MARKET" else Decimal(0)
            recv_window = int(body.get("recv_window") or 300_000)
            digest = stark.ParadexHasher(CHAIN_ID, account).order_hash(ts, market, side, kind, size, price)
        except (KeyError, ValueError, TypeError, InvalidOperation):
            return _error(400, "VALIDATION_ERROR", "malformed order")
        sig = _signature(str(body.get("signature", "")))
        if sig is None or not stark.verify(digest, sig, self.public_keys[account]):
            return _error(400, "INVALID_SIGNATURE", "order signature does not verify")
        if int(time.time() * 1000) > ts + recv_window:
            return _error(400, "ORDER_EXPIRED", "signature_timestamp outside recv_window")
        if (account, ts) in self.used_timestamps:
            return _error(400, "DUPLICATE_SIGNATURE", "signature_timestamp already used")
        self.used_timestamps.add((account, ts))
        return None

    async def place(self, request: web.Request) -> web.Response:
        account = self._account_of(request)
        if account is None:
            return _error(401, "INVALID_TOKEN", "bad or expired token")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "VALIDATION_ERROR", "body is not JSON")
        if not isinstance(body, dict) or body.get("market") not in MARKETS:
            return _error(400, "VALIDATION_ERROR", "unknown market")
        problem = self._verify_order(account, body)
        if problem is not None:
            return problem
        if self.take_reject():
            return _error(400, "PRICE_BAND_EXCEEDED", "order rejected by injected fault")
        kind = body["type"]
        sim = SimOrder(
            self.ledger.next_id(),
            str(account),
            MARKETS[body["market"]],
            body["side"],
            Decimal(body["size"]),
            Decimal(body["price"]) if kind == "LIMIT" else None,
            kind,
            reduce_only="REDUCE_ONLY" in (body.get("flags") or []),
        )
        if kind == "LIMIT" and body.get("instruction") == "IOC":
            sim.client_id = "FOK"  # sim ledger: do not rest
        self.ledger.execute(sim)
        sim.client_id = str(body.get("client_id", ""))
        await self.reply_faults()
        return web.json_response(self._order_row(sim), status=201)

    def _order_row(self, o: SimOrder) -> dict:
        closed = o.status in ("FILLED", "CANCELLED")
        return {
            "id": o.id,
            "client_id": o.client_id,
            "market": f"{o.market}-USD-PERP",
            "side": o.side,
            "type": o.order_type,
            "size": str(o.size),
            "remaining_size": str(o.size - o.filled),
            "price": str(o.price or 0),
            "avg_fill_price": str(o.avg_price) if o.avg_price else "",
            "status": "CLOSED" if closed else "OPEN",
            "created_at": o.created_ms,
        }

    async def open_orders(self, request: web.Request) -> web.Response:
        account = self._account_of(request)
        if account is None:
            return _error(401, "INVALID_TOKEN", "bad or expired token")
        rows = [
            self._order_row(o)
            for o in self.ledger.orders.values()
            if o.account == str(account) and o.status in ("OPEN", "PARTIALLY_FILLED")
        ]
        return web.json_response({"results": rows})

    async def get_order(self, request: web.Request) -> web.Response:
        account = self._account_of(request)
        if account is None:
            return _error(401, "INVALID_TOKEN", "bad or expired token")
        o = self.ledger.orders.get(request.match_info["id"])
        if o is None or o.account != str(account):
            return _error(404, "ORDER_NOT_FOUND", "order not found")
        return web.json_response(self._order_row(o))

    async def cancel(self, request: web.Request) -> web.Response:
        account = self._account_of(request)
        if account is None:
            return _error(401, "INVALID_TOKEN", "bad or expired token")
        o = self.ledger.orders.get(request.match_info["id"])
        if o is None or o.account != str(account) or o.status not in ("OPEN", "PARTIALLY_FILLED"):
            return _error(404, "ORDER_NOT_FOUND", "order not found")
        o.status = "CANCELLED"
        return web.Response(status=204)

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.add(ws)
        pushers: list[asyncio.Task] = []
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                except ValueError:
                    await ws.send_json({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}})
                    continue
                channel = str((req.get("params") or {}).get("channel", ""))
                if req.get("method") == "subscribe" and channel.startswith("order_book."):
                    market = channel.split(".")[1]
                    if market not in MARKETS:
                        await ws.send_json(
                            {
                                "jsonrpc": "2.0",
                                "id": req.get("id"),
                                "error": {"code": -32602, "message": "unknown market"},
                            }
                        )
                        continue
                    await ws.send_json({"jsonrpc": "2.0", "id": req.get("id"), "result": {"channel": channel}})
                    pushers.append(asyncio.create_task(self._push_book(ws, channel, market)))
        finally:
            for task in pushers:
                task.cancel()
            self.sockets.discard(ws)
        return ws

    async def _push_book(self, ws: web.WebSocketResponse, channel: str, market: str) -> None:
        seq, previous = 0, None
        while not ws.closed:
            if self.take_drop_ws():
                await ws.close()
                return
            bids, asks = self.ledger.book(MARKETS[market])
            current = {("BUY", p): s for p, s in bids} | {("SELL", p): s for p, s in asks}
            seq += 1
            if self.faults.gap_next_book and previous is not None:
                self.faults.gap_next_book = False
                seq += 1
            if previous is None:
                data = {"update_type": "s", "inserts": _levels(current), "updates": [], "deletes": []}
            else:
                data = {
                    "update_type": "d",
                    "inserts": _levels({k: v for k, v in current.items() if k not in previous}),
                    "updates": _levels({k: v for k, v in current.items() if k in previous and previous[k] != v}),
                    "deletes": _levels({k: Decimal(0) for k in previous if k not in current}),
                }
            previous = current
            data.update(seq_no=seq, market=market, last_updated_at=int(time.time() * 1000))
            await ws.send_json(
                {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}
            )
            await asyncio.sleep(0.05)


def _levels(levels: dict) -> list[dict]:
    return [{"side": side, "price": str(price), "size": str(size)} for (side, price), size in levels.items()]
