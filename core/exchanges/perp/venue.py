"""The small venue-neutral perpetuals interface the arbitrage engine uses (Vest, Paradex, simulators):
orders, positions, the account, and the JSON-over-HTTP plumbing the venues share."""

from __future__ import annotations

import abc
import asyncio
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from core.exchanges.errors import MalformedResponse, Unavailable
from core.exchanges.keepalive_http import KeepAliveClient
from core.exchanges.perp.book import BookFeed, OnBook, Side


@dataclass(frozen=True)
class PerpOrderRequest:
    market: str
    side: Side
    size: Decimal
    price: Decimal | None  # limit price, or the worst acceptable price for a MARKET order
    client_id: str
    order_type: Literal["MARKET", "LIMIT"] = "MARKET"
    reduce_only: bool = False
    time_in_force: Literal["IOC", "GTC"] = "IOC"

    def __post_init__(self) -> None:
        if self.side not in ("BUY", "SELL"):
            raise ValueError(f"side must be BUY or SELL, not {self.side!r}")
        if not isinstance(self.size, Decimal) or self.size <= 0:
            raise ValueError("size must be a positive Decimal")
        if self.price is not None and (not isinstance(self.price, Decimal) or self.price <= 0):
            raise ValueError("price must be a positive Decimal")
        if self.order_type == "LIMIT" and self.price is None:
            raise ValueError("a LIMIT order needs a price")


@dataclass(frozen=True)
class PerpOrderResult:
    venue: str
    order_id: str
    client_id: str
    status: str  # NEW, OPEN, FILLED, PARTIALLY_FILLED, CANCELLED, REJECTED
    filled_size: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class PerpPosition:
    venue: str
    market: str
    size: Decimal  # signed: positive long, negative short
    entry_price: Decimal | None
    unrealized_pnl: Decimal = Decimal(0)
    liquidation_price: Decimal | None = None  # the venue's estimate; None when it gives none
    funding: Decimal | None = None  # funding settled on this position since it opened (+ received), if given


@dataclass(frozen=True)
class PerpAccount:
    venue: str
    equity: Decimal
    available: Decimal
    maintenance_margin: Decimal | None = None  # what the open positions require; None when the venue gives none

    @property
    def margin_ratio(self) -> Decimal | None:
        """Maintenance margin over equity: 1 (or more) is the liquidation line."""
        if self.maintenance_margin is None:
            return None
        return self.maintenance_margin / self.equity if self.equity > 0 else Decimal(1)


class PerpVenue(abc.ABC):
    name: str = ""
    _http: JsonHttp
    warm_connections = 2  # idle connections kept open: one per leg of a trade sent at once (more for many pairs)

    async def keep_ready(self) -> None:
        """Keep the order path warm between trades (called every second or so): open connections,
        and in venues that sign ahead, fresh signed orders. Raises `Unavailable` if the venue is unreachable."""
        await self._http.keep_warm(self.warm_connections)

    @abc.abstractmethod
    async def markets(self) -> set[str]:
        """The markets the venue lists (the arbitrage engine checks its pairs against them at start)."""

    @abc.abstractmethod
    async def connect_book(self, market: str, on_book: OnBook | None = None) -> BookFeed: ...

    @abc.abstractmethod
    def prepare(self, req: PerpOrderRequest) -> dict[str, Any]:
        """The order's signed request body: signing can happen ahead of the moment of sending."""

    @abc.abstractmethod
    async def send_prepared(self, req: PerpOrderRequest, body: dict[str, Any]) -> PerpOrderResult: ...

    async def place_order(self, req: PerpOrderRequest) -> PerpOrderResult:
        return await self.send_prepared(req, self.prepare(req))

    @abc.abstractmethod
    async def cancel_order(self, order_id: str) -> None: ...

    @abc.abstractmethod
    async def open_orders(self) -> list[PerpOrderResult]: ...

    @abc.abstractmethod
    async def positions(self) -> list[PerpPosition]: ...

    @abc.abstractmethod
    async def account(self) -> PerpAccount: ...

    async def account_state(self) -> tuple[PerpAccount, list[PerpPosition]]:
        """The account and its positions, read together (the arbitrage engine's risk watch)."""
        account, positions = await asyncio.gather(self.account(), self.positions())
        return account, positions

    @abc.abstractmethod
    async def close(self) -> None: ...


class JsonHttp:
    """A venue's REST endpoint: JSON in and out over kept-alive connections; transport failures
    become `Unavailable`, a reply that is not JSON `MalformedResponse` (or `Unavailable` on a 5xx)."""

    def __init__(self, base_url: str, venue: str, timeout: float = 5.0):
        self.venue = venue
        self._client = KeepAliveClient(base_url, timeout)

    @property
    def timeout(self) -> float:
        return self._client.timeout

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self._client.timeout = seconds

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        hdrs = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        try:
            response = await self._client.request(method, path, params=params, body=data, headers=hdrs)
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise Unavailable(f"{method} {path}: {type(exc).__name__}", venue=self.venue) from exc
        status = response.status
        try:
            return status, (json.loads(response.body) if response.body else None)
        except ValueError as exc:
            if status >= 500:
                raise Unavailable(f"{method} {path}: HTTP {status}", venue=self.venue, code=status) from exc
            raise MalformedResponse(
                f"{method} {path}: non-JSON reply (HTTP {status})", venue=self.venue, code=status
            ) from exc

    async def keep_warm(self, connections: int = 2) -> None:
        try:
            await self._client.keep_warm(connections)
        except (TimeoutError, OSError) as exc:
            raise Unavailable(f"connect: {type(exc).__name__}", venue=self.venue) from exc

    async def close(self) -> None:
        await self._client.close()
