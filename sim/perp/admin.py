"""The perp simulator faces' admin endpoints (loopback only): the risk faults the arbitrage engine's risk
watch is proven against, on a running `python -m sim.perp` as on the in-process faces of the tests.

    POST /sim/admin/mark      {"market": "BTC", "move_bps": "-2000"}          the underlying (both venues' marks)
                                                                            steps; underwater accounts are liquidated
    POST /sim/admin/adl       {"account": ID, "market": "BTC", "size": "0.004"}   auto-deleveraging shrinks a position
    POST /sim/admin/position  {"account": ID, "market": "BTC", "size": "-0.01"}   the position is set from outside
    POST /sim/admin/funding   {"market": "BTC", "rate_bps": "1"}              one funding settlement on this venue

ID is the account's public identity: Vest's signing address, Paradex's account address (never an API key).
Every bad input is a 400 with {"error": ...}; nothing changes then.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from aiohttp import web

from sim.admin_http import Handler, loopback_json

if TYPE_CHECKING:
    from sim.perp.face import FaceServer

MAX_MOVE_BPS = Decimal(5000)
MAX_SIZE = Decimal(1_000_000)
MAX_FUNDING_BPS = Decimal(100)


def _decimal(body: dict, key: str) -> Decimal:
    try:
        value = Decimal(str(body[key]))
    except KeyError:
        raise ValueError(f"{key} is required") from None
    except InvalidOperation:
        raise ValueError(f"{key} must be a number, got {body[key]!r}") from None
    if not value.is_finite():
        raise ValueError(f"{key} must be a finite number")
    return value


def admin_routes(face: FaceServer) -> list[web.RouteDef]:
    ledger = face.ledger

    def guarded(handler: Handler) -> Callable:
        return loopback_json(handler, (ValueError,))

    def market_of(body: dict) -> str:
        market = body.get("market")
        if market not in ledger.market.markets:
            raise ValueError(f"market must be one of {', '.join(ledger.market.markets)}, got {market!r}")
        return str(market)

    def account_of(body: dict) -> str:
        account = face.account_by_public_id(str(body.get("account", "")))
        if account is None:
            raise ValueError(f"no account {body.get('account')!r} on this venue")
        return account

    def size_of(body: dict) -> Decimal:
        size = _decimal(body, "size")
        if abs(size) > MAX_SIZE:
            raise ValueError(f"size must be within ±{MAX_SIZE}")
        return size

    def position_reply(account: str, market: str) -> web.Response:
        size = ledger.accounts[account].positions.get(market, (Decimal(0), Decimal(0)))[0]
        liquidation = ledger.liquidation_price(account, market)
        return web.json_response(
            {"market": market, "position": str(size), "liquidation_price": str(liquidation) if liquidation else None}
        )

    async def mark(body: dict) -> web.Response:
        market, bps = market_of(body), _decimal(body, "move_bps")
        if abs(bps) > MAX_MOVE_BPS:
            raise ValueError(f"move_bps must be within ±{MAX_MOVE_BPS}")
        ledger.market.move(market, bps)
        face.liquidate()
        return web.json_response({"market": market, "mid": str(ledger.market.mid(face.venue, market))})

    async def adl(body: dict) -> web.Response:
        account, market, size = account_of(body), market_of(body), size_of(body)
        if size <= 0:
            raise ValueError("size must be positive: how much of the position is deleveraged")
        ledger.deleverage(account, market, size)
        return position_reply(account, market)

    async def position(body: dict) -> web.Response:
        account, market, size = account_of(body), market_of(body), size_of(body)
        current = ledger.accounts[account].positions.get(market, (Decimal(0), Decimal(0)))[0]
        ledger.outside_fill(account, market, size - current)
        return position_reply(account, market)

    async def funding(body: dict) -> web.Response:
        market, rate = market_of(body), _decimal(body, "rate_bps")
        if abs(rate) > MAX_FUNDING_BPS:
            raise ValueError(f"rate_bps must be within ±{MAX_FUNDING_BPS}")
        ledger.pay_funding(market, rate)
        return web.json_response({"market": market, "rate_bps": str(rate)})

    return [
        web.post("/sim/admin/funding", guarded(funding)),
        web.post("/sim/admin/mark", guarded(mark)),
        web.post("/sim/admin/adl", guarded(adl)),
        web.post("/sim/admin/position", guarded(position)),
    ]
