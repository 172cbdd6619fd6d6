"""Broker connections: a user's accounts on venues, their markets and balances.

Credentials are stored only encrypted (BrokerConnection.set_credentials) and are never returned to a
page again; the exchange adapter for a connection is built here and nowhere else.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.exchanges.errors import ExchangeError
from core.exchanges.models import Balance, SymbolRules
from core.exchanges.ratelimit import background
from core.exchanges.rules import decimal_str
from core.exchanges.spot.base import Exchange
from core.exchanges.spot.registry import VENUES, make_exchange
from core.infra.config import Settings, get_settings
from core.infra.db import new_session, utcnow
from core.infra.security import register_secret
from core.models import BrokerConnection, Order, SymbolRule
from core.outbound import UnsafeUrl, check_url, guard

log = logging.getLogger(__name__)

# Public test venues a "testnet" connection points at when it gives no base URL of its own.
TESTNET_URLS = {"binance": "https://testnet.binance.vision"}
NEEDS_PASSPHRASE = frozenset({"bitget"})
VALUATION_ASSET = "USDT"
STABLECOINS = frozenset({"USDT", "USDC", "FDUSD", "BUSD", "DAI"})


class BrokerError(ValueError):
    """A connection the user described cannot be saved as given; the message says why."""


@dataclass(frozen=True)
class ConnectionInput:
    venue: str
    label: str
    api_key: str | None  # None on edit keeps the stored credentials
    api_secret: str | None
    passphrase: str | None = None
    base_url: str | None = None
    testnet: bool = False

    def __repr__(self) -> str:
        return f"ConnectionInput(venue={self.venue!r}, label={self.label!r}, api_key='…')"


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    balances: dict[str, Balance]
    error: str | None = None
    error_kind: str | None = None


@dataclass(frozen=True)
class Holding:
    asset: str
    free: Decimal
    locked: Decimal
    price: Decimal | None  # in VALUATION_ASSET; None when the venue lists no pair for it
    value: Decimal | None


@dataclass(frozen=True)
class Portfolio:
    holdings: list[Holding]
    total: Decimal
    unpriced: list[str]


# ---- connections ---------------------------------------------------------------------------------


def _clean_base_url(url: str | None) -> str | None:
    url = (url or "").strip().rstrip("/")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BrokerError("base URL must look like https://host[:port]")
    try:
        check_url(url)
    except UnsafeUrl as exc:
        raise BrokerError(f"base URL refused: {exc}") from None
    return url


def _validate(data: ConnectionInput, *, creating: bool) -> None:
    if data.venue not in VENUES:
        raise BrokerError(f"unknown venue {data.venue!r}; expected one of {', '.join(VENUES)}")
    if not data.label.strip() or len(data.label) > 64:
        raise BrokerError("label must be 1-64 characters")
    if creating and not (data.api_key and data.api_secret):
        raise BrokerError("API key and secret are required")
    if bool(data.api_key) != bool(data.api_secret):
        raise BrokerError("give both the API key and the secret to replace them")
    if creating and data.venue in NEEDS_PASSPHRASE and not data.passphrase:
        raise BrokerError(f"{data.venue} needs the API key's passphrase")
    if data.testnet and not data.base_url and data.venue not in TESTNET_URLS and data.venue != "sim":
        raise BrokerError(f"no public testnet is known for {data.venue}; give its base URL")


def _label_taken(session: Session, user_id: int, label: str, except_id: int | None = None) -> bool:
    query = select(BrokerConnection.id).where(BrokerConnection.user_id == user_id, BrokerConnection.label == label)
    if except_id is not None:
        query = query.where(BrokerConnection.id != except_id)
    return session.scalar(query) is not None


def create_connection(session: Session, user_id: int, data: ConnectionInput) -> BrokerConnection:
    _validate(data, creating=True)
    label = data.label.strip()
    if _label_taken(session, user_id, label):
        raise BrokerError(f"you already have a connection labelled {label!r}")
    broker = BrokerConnection(
        user_id=user_id, venue=data.venue, label=label, base_url=_clean_base_url(data.base_url), testnet=data.testnet
    )
    broker.set_credentials(data.api_key or "", data.api_secret or "", data.passphrase)
    session.add(broker)
    session.flush()
    log.info("broker_created", extra={"user_id": user_id, "broker_id": broker.id, "venue": data.venue})
    return broker


def update_connection(session: Session, broker: BrokerConnection, data: ConnectionInput) -> BrokerConnection:
    """Edit label, venue settings and, when given, the credentials (blank keeps the stored ones)."""
    _validate(data, creating=False)
    label = data.label.strip()
    if _label_taken(session, broker.user_id, label, except_id=broker.id):
        raise BrokerError(f"you already have a connection labelled {label!r}")
    if data.venue != broker.venue and session.scalar(select(Order.id).where(Order.broker_id == broker.id).limit(1)):
        raise BrokerError("this connection has orders; the venue cannot change (create a new connection)")
    broker.venue, broker.label = data.venue, label
    broker.base_url, broker.testnet = _clean_base_url(data.base_url), data.testnet
    if data.api_key and data.api_secret:
        current = broker.credentials()
        broker.set_credentials(data.api_key, data.api_secret, data.passphrase or current["passphrase"])
    elif data.passphrase:
        current = broker.credentials()
        broker.set_credentials(current["api_key"], current["api_secret"], data.passphrase)
    forget_exchange(broker.id)
    log.info("broker_updated", extra={"user_id": broker.user_id, "broker_id": broker.id, "venue": broker.venue})
    return broker


def delete_connection(session: Session, broker: BrokerConnection) -> None:
    """Delete a connection; refused while it has orders, so the order history never loses its venue."""
    if session.scalar(select(Order.id).where(Order.broker_id == broker.id).limit(1)):
        raise BrokerError(f"{broker.label!r} has orders in its history and cannot be deleted")
    session.delete(broker)
    session.flush()
    forget_exchange(broker.id)
    log.info("broker_deleted", extra={"user_id": broker.user_id, "broker_id": broker.id})


def list_connections(session: Session, user_id: int) -> list[BrokerConnection]:
    return list(
        session.scalars(
            select(BrokerConnection).where(BrokerConnection.user_id == user_id).order_by(BrokerConnection.label)
        )
    )


# ---- the adapter of a connection -----------------------------------------------------------------


def base_url_for(broker: BrokerConnection, settings: Settings | None = None) -> str | None:
    if broker.base_url:
        return broker.base_url
    if broker.venue == "sim":
        return (settings or get_settings()).sim_url
    if broker.testnet:
        return TESTNET_URLS.get(broker.venue)
    return None


_exchanges: dict[int, tuple[str, Exchange]] = {}
_exchanges_lock = threading.Lock()


def _fingerprint(broker: BrokerConnection, base_url: str | None) -> str:
    material = f"{broker.venue}|{base_url}|{broker.api_key_enc}|{broker.api_secret_enc}|{broker.passphrase_enc}"
    return hashlib.sha256(material.encode()).hexdigest()


def exchange_for(broker: BrokerConnection, *, fresh: bool = False, **options) -> Exchange:
    """The adapter for a connection, reused per process: its keep-alive session, clock offset and
    markets survive between orders (what keeps click-to-ack fast). `fresh` builds a private one."""
    base_url = base_url_for(broker)
    if fresh or options:
        return _build(broker, base_url, **options)
    fingerprint = _fingerprint(broker, base_url)
    with _exchanges_lock:
        cached = _exchanges.get(broker.id)
        if cached and cached[0] == fingerprint:
            return cached[1]
    exchange = _build(broker, base_url)
    with _exchanges_lock:
        # Another account on the same venue already loaded its markets and measured its clock: a new
        # connection's first order then asks the venue nothing more (exchangeInfo weighs 20 on Binance).
        for _, sibling in _exchanges.values():
            exchange.adopt_venue_facts(sibling)
            if exchange.has_markets:
                break
        _exchanges[broker.id] = (fingerprint, exchange)
    return exchange


def warm_adapters(limit: int = 8) -> int:
    """Build one adapter per venue and address in use, its markets loaded and its clock measured: this
    process's first order then asks the venue nothing before its own request, whatever its account (a new
    adapter starts from its venue's facts, see exchange_for). Returns how many are warm; one that fails
    (venue down, keys unreadable) stays cold and its first order loads what it needs, as before."""
    newest: dict[tuple[str, str | None], BrokerConnection] = {}
    with new_session() as session:  # closed (its connection back in the pool) before any request to a venue
        for broker in session.scalars(select(BrokerConnection).order_by(BrokerConnection.id.desc())):
            newest.setdefault((broker.venue, base_url_for(broker)), broker)
    warm = 0
    for broker in list(newest.values())[:limit]:
        try:
            exchange = exchange_for(broker)
            exchange.markets()
            exchange.now_ms()
            warm += 1
        except Exception as exc:  # noqa: BLE001 - an optimisation only: never fails the process's start
            log.info("adapter_not_warmed", extra={"broker_id": broker.id, "error": f"{type(exc).__name__}"})
    return warm


def _build(broker: BrokerConnection, base_url: str | None, **options) -> Exchange:
    if broker.base_url:
        try:  # again: the address behind the name may have changed since it was saved
            check_url(broker.base_url)
        except UnsafeUrl as exc:
            raise ExchangeError(f"base URL refused: {exc}", venue=broker.venue) from None
    creds = broker.credentials()
    for value in creds.values():
        register_secret(value)
    exchange = make_exchange(
        broker.venue,
        api_key=creds["api_key"],
        api_secret=creds["api_secret"],
        passphrase=creds["passphrase"],
        base_url=base_url,
        redis=get_settings().redis_url,
        **options,
    )
    guard(exchange.session)  # every new connection's address checked too; a redirect is an error
    return exchange


def forget_exchange(broker_id: int) -> None:
    with _exchanges_lock:
        cached = _exchanges.pop(broker_id, None)
    if cached:
        cached[1].close()


# ---- venue actions --------------------------------------------------------------------------------


def check_connection(broker: BrokerConnection) -> ConnectionCheck:
    """Balances when the keys work, or the venue's exact error (auth, unreachable, ...)."""
    exchange = None
    try:
        exchange = exchange_for(broker, fresh=True, max_attempts=1, timeout=10.0)
        balances = exchange.balances()
    except ExchangeError as err:
        log.info("broker_test_failed", extra={"broker_id": broker.id, "venue": broker.venue, "error_kind": err.kind})
        return ConnectionCheck(ok=False, balances={}, error=str(err), error_kind=err.kind)
    finally:
        if exchange is not None:
            exchange.close()
    return ConnectionCheck(ok=True, balances=balances)


def rules_to_json(rules: SymbolRules) -> dict:
    return {
        "tick_size": decimal_str(rules.tick_size),
        "step_size": decimal_str(rules.step_size),
        "min_qty": decimal_str(rules.min_qty),
        "min_notional": decimal_str(rules.min_notional),
        "max_qty": decimal_str(rules.max_qty) if rules.max_qty else None,
        "order_types": sorted(rules.order_types),
        "oco_allowed": rules.oco_allowed,
        "trading": rules.trading,
    }


def rules_from_row(row: SymbolRule) -> SymbolRules:
    data = row.rules
    return SymbolRules(
        symbol=row.symbol,
        base=row.base,
        quote=row.quote,
        tick_size=Decimal(data["tick_size"]),
        step_size=Decimal(data["step_size"]),
        min_qty=Decimal(data["min_qty"]),
        min_notional=Decimal(data["min_notional"]),
        max_qty=Decimal(data["max_qty"]) if data.get("max_qty") else None,
        order_types=frozenset(data.get("order_types", [])),
        oco_allowed=bool(data.get("oco_allowed")),
        trading=bool(data.get("trading", True)),
    )


def load_markets(session: Session, broker: BrokerConnection) -> int:
    """Fetch the venue's symbols and rules into SymbolRule (upsert); returns how many. Raises ExchangeError."""
    with background():
        markets = exchange_for(broker).markets(refresh=True)
    now = utcnow()
    for rules in markets.values():
        values = {
            "broker_id": broker.id,
            "symbol": rules.symbol,
            "base": rules.base,
            "quote": rules.quote,
            "rules": rules_to_json(rules),
            "updated_at": now,
        }
        session.execute(
            insert(SymbolRule)
            .values(**values)
            .on_conflict_do_update(
                index_elements=["broker_id", "symbol"],
                set_={k: values[k] for k in ("base", "quote", "rules", "updated_at")},
            )
        )
    broker.markets_loaded_at = now
    session.flush()
    log.info("markets_loaded", extra={"broker_id": broker.id, "venue": broker.venue, "symbols": len(markets)})
    return len(markets)


def symbol_rules(session: Session, broker_id: int, symbol: str) -> SymbolRules | None:
    row = session.scalar(select(SymbolRule).where(SymbolRule.broker_id == broker_id, SymbolRule.symbol == symbol))
    return rules_from_row(row) if row else None


def symbols_of(session: Session, broker_id: int) -> list[str]:
    return list(
        session.scalars(select(SymbolRule.symbol).where(SymbolRule.broker_id == broker_id).order_by(SymbolRule.symbol))
    )


def last_price(exchange: Exchange, symbol: str) -> Decimal | None:
    """The latest trade price of a symbol, from the venue's 1m candles (every adapter has them)."""
    candles = exchange.klines(symbol, "1m", limit=1)
    return candles[-1].close if candles else None


def portfolio(broker: BrokerConnection) -> Portfolio:
    """Balances valued in USDT at the venue's last prices. Raises ExchangeError."""
    exchange = exchange_for(broker)
    with background():  # a balance refresh yields the venue's budget to orders
        balances = exchange.balances()
        markets = exchange.markets()
        holdings, unpriced, total = [], [], Decimal(0)
        for asset, balance in sorted(balances.items()):
            if balance.total <= 0:
                continue
            price: Decimal | None = Decimal(1) if asset in STABLECOINS else None
            pair = f"{asset}{VALUATION_ASSET}"
            if price is None and pair in markets:
                try:
                    price = last_price(exchange, pair)
                except ExchangeError as err:
                    log.warning(
                        "valuation_price_failed", extra={"broker_id": broker.id, "symbol": pair, "error": str(err)}
                    )
            value = balance.total * price if price is not None else None
            if value is None:
                unpriced.append(asset)
            else:
                total += value
            holdings.append(Holding(asset, balance.free, balance.locked, price, value))
        return Portfolio(holdings=holdings, total=total, unpriced=unpriced)


def exchange_for_id(broker_id: int) -> Exchange:
    from core.infra.db import session_scope

    with session_scope() as session:
        broker = session.get(BrokerConnection, broker_id)
        if broker is None:
            raise LookupError(f"no broker connection {broker_id}")
        return exchange_for(broker)
