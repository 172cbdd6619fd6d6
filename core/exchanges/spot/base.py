"""The one Exchange interface, with the HTTP plumbing every native adapter shares.

Venue quirks (signing, endpoints, response shapes, error codes) live in small subclasses; this
class owns what must behave the same everywhere: timeouts, retries, rate limiting, symbol rules,
idempotent order placement and OCO emulation.

Retry policy: reads are retried on transient failures (timeout, 5xx, garbage) with exponential
backoff. A request the venue refused for rate limiting was not executed, so it is retried for
everyone after the venue's Retry-After. An order whose outcome is unknown is never blindly resent:
we look it up by its client order id first, and only resend (with the same id) if it is not there.
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar

import redis as redis_lib
import requests

from core.exchanges import answers
from core.exchanges.clock import VenueClock
from core.exchanges.errors import (
    ExchangeError,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    RateLimited,
    Unavailable,
    UnknownSymbol,
)
from core.exchanges.models import (
    Balance,
    Kline,
    OcoRequest,
    OcoResult,
    OrderRequest,
    SymbolRules,
    VenueOrder,
    VenueTrade,
)
from core.exchanges.ratelimit import RateLimiter, RequestClass, priority
from core.exchanges.rules import round_and_validate

log = logging.getLogger(__name__)

T = TypeVar("T")


def mask(secret: str | None) -> str:
    """Enough of a credential to tell two keys apart in a repr, never enough to use it."""
    if not secret:
        return "''"
    return f"'{secret[:4]}…'" if len(secret) > 12 else "'…'"


def to_decimal(value: Any, what: str, venue: str = "") -> Decimal:
    """Parse a venue number (string or JSON number) as Decimal or raise MalformedResponse."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        raise MalformedResponse(f"{what} is not a number: {value!r}", venue=venue) from None
    if not number.is_finite():
        raise MalformedResponse(f"{what} is not a finite number: {value!r}", venue=venue)
    return number


def require(payload: Any, name: str, venue: str = "") -> Any:
    """payload[name], or MalformedResponse naming the missing field."""
    if not isinstance(payload, Mapping) or name not in payload:
        raise MalformedResponse(f"response lacks '{name}': {str(payload)[:200]}", venue=venue)
    return payload[name]


def retry_after_seconds(response: requests.Response, default: float) -> float:
    header = response.headers.get("Retry-After", "")
    try:
        return max(float(header), 0.0)
    except ValueError:
        return default


CLIENT_ID_PREFIX = "ab-"
# Longest client order id each venue accepts (Binance newClientOrderId ^[.A-Z:/a-z0-9_-]{1,36}$,
# Kraken cl_ord_id <= 18 ASCII chars), minus room for the OCO leg suffix ("-tp"/"-sl").
CLIENT_ID_MAX_LEN = {"binance": 36, "sim": 36, "bitget": 40, "kraken": 18}
OCO_SUFFIX_LEN = 3
CONNECTIONS_PER_HOST = 32  # kept open per venue host: above the 20 bot ticks a bots worker runs at once


def client_order_id_for(order_id: int | str, venue: str) -> str:
    """Deterministic client order id for our order `order_id`: a retry reuses it, so the venue never
    creates a second order, and reconciliation finds our orders by it."""
    text = str(order_id)
    if not text or not all(c.isascii() and (c.isalnum() or c == "_") for c in text):
        raise ValueError(f"order id {order_id!r} must be ASCII letters, digits or '_'")
    if venue not in CLIENT_ID_MAX_LEN:
        raise ValueError(f"unknown venue {venue!r}")
    client_id = f"{CLIENT_ID_PREFIX}{text}"
    if len(client_id) + OCO_SUFFIX_LEN > CLIENT_ID_MAX_LEN[venue]:
        raise ValueError(f"order id {order_id!r} is too long for a {venue} client order id")
    return client_id


class Exchange(ABC):
    venue: ClassVar[str]
    default_base_url: ClassVar[str]
    # Budgets shared by all processes (see ratelimit.py): venue-wide weights and per-key request counts.
    venue_limits: ClassVar[tuple[str, ...]] = ()
    key_limits: ClassVar[tuple[str, ...]] = ()
    # Binance and Bitget budget new orders per account; Kraken's per-key counter counts every private call.
    key_limits_count_every_request: ClassVar[bool] = True
    has_native_oco: ClassVar[bool] = False

    def __init__(
        self,
        *,
        api_key: str = "",
        api_secret: str = "",
        passphrase: str | None = None,
        base_url: str | None = None,
        redis: redis_lib.Redis | None = None,
        timeout: float = 10.0,
        max_attempts: int = 3,
        backoff_s: float = 0.25,
        max_wait_s: float = 10.0,
        venue_limits: tuple[str, ...] | None = None,
        key_limits: tuple[str, ...] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._api_key = api_key
        self._api_secret = api_secret
        self._passphrase = passphrase
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self._sleep = sleep
        self.redis = redis
        self.session = requests.Session()  # keep-alive: one TCP/TLS connection reused per venue
        # One exchange object serves every thread of a process (the bots worker runs 20 ticks at once): a pool of
        # requests' default 10 would close and reopen the connections of the threads past the tenth.
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=CONNECTIONS_PER_HOST)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = "aristobot/0.1"
        # The environment's proxy and CA settings, read once: requests reads them again for every request
        # when trust_env is on (a tenth of the orders worker's CPU per order, measured in BENCHMARKS.md).
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.trust_env = False
        # Limits default to the venue's documented budgets; an account tier may allow more.
        self.limiter = RateLimiter(
            redis,
            venue=self.venue,
            api_key=api_key,
            venue_limits=self.venue_limits if venue_limits is None else venue_limits,
            key_limits=self.key_limits if key_limits is None else key_limits,
            max_wait_s=max_wait_s,
            sleep=sleep,
        )
        self.clock = VenueClock(self._venue_time_ms, venue=self.venue)
        self._markets: dict[str, SymbolRules] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={mask(self._api_key)})"

    __str__ = __repr__

    def close(self) -> None:
        self.session.close()

    # ---- the interface every venue implements -------------------------------------------------

    @abstractmethod
    def server_time_ms(self) -> int: ...

    @abstractmethod
    def load_markets(self) -> dict[str, SymbolRules]: ...

    @abstractmethod
    def balances(self) -> dict[str, Balance]: ...

    @abstractmethod
    def _send_order(self, order: OrderRequest) -> VenueOrder:
        """Send one already-validated order once (no retry: place_order decides)."""

    @abstractmethod
    def cancel_order(
        self, symbol: str, *, venue_order_id: str | None = None, client_order_id: str | None = None
    ) -> VenueOrder: ...

    @abstractmethod
    def get_order(
        self, symbol: str, *, venue_order_id: str | None = None, client_order_id: str | None = None
    ) -> VenueOrder:
        """Raise OrderNotFound when the venue does not know the order."""

    @abstractmethod
    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]: ...

    @abstractmethod
    def trades(self, symbol: str, *, start_ms: int | None = None, limit: int | None = None) -> list[VenueTrade]: ...

    @abstractmethod
    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int | None = None,
    ) -> list[Kline]: ...

    def _send_native_oco(self, oco: OcoRequest, take_profit: OrderRequest, stop_loss: OrderRequest) -> OcoResult:
        """Send an OCO whose legs are already rounded and validated."""
        raise NotImplementedError(f"{self.venue} has no native OCO")

    def _get_native_oco(self, symbol: str, client_order_id: str) -> OcoResult:
        raise NotImplementedError(f"{self.venue} has no native OCO")

    # ---- shared behaviour -----------------------------------------------------------------------

    def markets(self, *, refresh: bool = False) -> dict[str, SymbolRules]:
        if self._markets is None or refresh:
            with answers.unheard():  # the venue's, not an order's: no order's audit trail keeps it
                self._markets = self.load_markets()
        return self._markets

    def _venue_time_ms(self) -> int:
        with answers.unheard():
            return self.server_time_ms()

    def adopt_venue_facts(self, other: Exchange) -> None:
        """Start from what another adapter of the same venue and URL (another account) already knows:
        its markets and clock offset, which are the venue's, not the account's."""
        if type(other) is type(self) and other.base_url == self.base_url:
            if other._markets is not None:
                self._markets = other._markets
            self.clock.adopt(other.clock)

    @property
    def has_markets(self) -> bool:
        """The markets are loaded in this process: `rules` asks the venue nothing."""
        return self._markets is not None

    def rules(self, symbol: str) -> SymbolRules:
        try:
            return self.markets()[symbol]
        except KeyError:
            raise UnknownSymbol(f"unknown symbol {symbol!r} on {self.venue}", venue=self.venue) from None

    def native_trailing(self, order: OrderRequest) -> bool:
        """The venue runs this trailing stop itself (else Aristobot emulates it: core/orders/trailing_watch.py)."""
        return "trailing_stop" in self.rules(order.symbol).order_types

    def now_ms(self) -> int:
        """Our clock corrected by the venue's measured offset; what signed requests carry."""
        return self.clock.now_ms()

    def place_order(self, order: OrderRequest, *, reference_price: Decimal | None = None) -> VenueOrder:
        """Round the order to the symbol's grid, check it, and place it exactly once.

        On an unknown outcome (timeout, 5xx, garbage answer) the order is looked up by its client
        order id; it is resent with the same id only if the venue does not have it. If the venue
        cannot be reached for the lookup either, Unavailable is raised: the order may exist, and
        reconciliation finds it by client order id.
        """
        order = round_and_validate(order, self.rules(order.symbol), reference_price=reference_price)
        log.info(
            "order_sending",
            extra={
                "venue": self.venue,
                "client_order_id": order.client_order_id,
                "symbol": order.symbol,
                "side": order.side,
                "type": order.type,
            },
        )
        return self._place_once(
            lambda: self._send_order(order),
            lambda: self.get_order(order.symbol, client_order_id=order.client_order_id),
            order.client_order_id,
        )

    def _place_once(self, send: Callable[[], T], lookup: Callable[[], T], client_order_id: str) -> T:
        unknown_outcome: ExchangeError | None = None
        for attempt in range(self.max_attempts):
            try:
                return send()
            except (Unavailable, MalformedResponse) as err:
                unknown_outcome = err
            except InvalidOrder:
                # A resend refused as a duplicate means the first attempt did land.
                if unknown_outcome is None:
                    raise
            log.warning(
                "order_outcome_unknown",
                extra={
                    "venue": self.venue,
                    "attempt": attempt + 1,
                    "client_order_id": client_order_id,
                    "error": str(unknown_outcome),
                },
            )
            try:
                return lookup()
            except OrderNotFound:
                self._sleep(self.backoff_s * 2**attempt)
        assert unknown_outcome is not None
        raise unknown_outcome

    def place_oco(self, oco: OcoRequest, *, reference_price: Decimal | None = None) -> OcoResult:
        """Native OCO where the venue has it; otherwise two linked orders (see settle_emulated_oco)."""
        rules = self.rules(oco.symbol)
        take_profit = round_and_validate(oco.take_profit_leg(), rules, reference_price=reference_price)
        stop_loss = round_and_validate(oco.stop_loss_leg(), rules, reference_price=reference_price)
        if self.has_native_oco and rules.oco_allowed:
            return self._place_once(
                lambda: self._send_native_oco(oco, take_profit, stop_loss),
                lambda: self._get_native_oco(oco.symbol, oco.client_order_id),
                oco.client_order_id,
            )
        # Stop first: if only one leg can exist, the protective one matters more. If the venue refuses
        # the second leg the first is cancelled, so an OCO is placed whole or not at all. If the second
        # leg's outcome is unknown it may exist: the stop stays, and reconciliation finds both by id.
        stop_order = self._place_leg(stop_loss)
        if stop_order.filled_qty > 0:  # an earlier attempt's stop already traded: no other leg, ever
            return OcoResult(
                client_order_id=oco.client_order_id, symbol=oco.symbol, orders=(stop_order,), emulated=True
            )
        try:
            profit_order = self._place_leg(take_profit)
        except (Unavailable, MalformedResponse):
            raise
        except ExchangeError:
            # Not bound by the entry's deadline (which may be what just passed): the stop must go.
            with priority(RequestClass.ORDER):
                self.cancel_order(oco.symbol, client_order_id=stop_order.client_order_id)
            raise
        return OcoResult(
            client_order_id=oco.client_order_id, symbol=oco.symbol, orders=(profit_order, stop_order), emulated=True
        )

    def _place_leg(self, leg: OrderRequest) -> VenueOrder:
        """One leg of an emulated OCO. A leg the venue refuses because an earlier attempt of a re-sent
        OCO already placed it (same client order id) is kept as it is, not taken for a refusal."""
        try:
            return self.place_order(leg)
        except InvalidOrder as refused:
            try:
                return self.get_order(leg.symbol, client_order_id=leg.client_order_id)
            except OrderNotFound:
                raise refused from None

    def settle_emulated_oco(self, oco: OcoResult) -> OcoResult:
        """Cancel-on-fill for an emulated OCO: once a leg has any fill, cancel the other.

        Call it from reconciliation (and on every fill event) until both legs are final.
        """
        legs = [self.get_order(oco.symbol, client_order_id=leg.client_order_id) for leg in oco.orders]
        if any(leg.filled_qty > 0 for leg in legs):
            legs = [
                leg
                if leg.is_final or leg.filled_qty > 0
                else self.cancel_order(oco.symbol, client_order_id=leg.client_order_id)
                for leg in legs
            ]
        return OcoResult(
            client_order_id=oco.client_order_id,
            symbol=oco.symbol,
            orders=tuple(legs),
            emulated=oco.emulated,
            venue_list_id=oco.venue_list_id,
        )

    # ---- HTTP plumbing ----------------------------------------------------------------------------

    def _http(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """One HTTP exchange; transport failures become Unavailable (outcome unknown)."""
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        try:
            return self.session.request(method, url, data=body, headers=dict(headers or {}), timeout=self.timeout)
        except requests.Timeout:
            raise Unavailable(f"no answer within {self.timeout:g}s to {method} {path}", venue=self.venue) from None
        except requests.RequestException as err:
            # The exception text holds the full URL; keep only the kind of failure.
            raise Unavailable(
                f"cannot reach the venue for {method} {path} ({type(err).__name__})", venue=self.venue
            ) from None

    def _json(self, response: requests.Response) -> Any:
        """Status-level checks shared by every venue, then the parsed JSON body."""
        if response.status_code in (429, 418):
            raise RateLimited(
                f"rate limited by the venue (HTTP {response.status_code})",
                venue=self.venue,
                code=response.status_code,
                retry_after=retry_after_seconds(response, 1.0),
            )
        try:
            payload = response.json()
        except ValueError:
            answers.hear(response, is_json=False)
            if response.status_code >= 500:
                raise Unavailable(
                    f"venue error HTTP {response.status_code}", venue=self.venue, code=response.status_code
                ) from None
            raise MalformedResponse(
                f"HTTP {response.status_code} with a body that is not JSON: {response.text[:120]!r}", venue=self.venue
            ) from None
        answers.hear(response, payload)
        return payload

    def _call(self, attempt: Callable[[], T], *, idempotent: bool, cost: int = 1) -> T:
        """Run one request with rate limiting and the retry policy described in the module docstring.

        `attempt` must rebuild and re-sign the request each time (fresh timestamp / nonce).
        """
        venue_refusal: RateLimited | None = None
        for number in range(1, self.max_attempts + 1):
            try:
                # Only order placement is non-idempotent, so it is what "orders" key budgets count.
                self.limiter.acquire(cost, per_key=self.key_limits_count_every_request or not idempotent)
            except RateLimited:
                if venue_refusal is not None:
                    raise venue_refusal from None  # the venue's own code and message, for the user
                raise
            try:
                return attempt()
            except RateLimited as err:
                venue_refusal = err
                self.limiter.block(err.retry_after if err.retry_after is not None else self.backoff_s)
                if number == self.max_attempts:
                    raise
            except (Unavailable, MalformedResponse) as err:
                if not idempotent or number == self.max_attempts:
                    raise
                log.warning("request_retry", extra={"venue": self.venue, "attempt": number, "error": str(err)})
                self._sleep(self.backoff_s * 2 ** (number - 1))
        raise AssertionError("unreachable")
