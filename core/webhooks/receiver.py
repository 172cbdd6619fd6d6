"""The hot path of a TradingView alert: check it, store it (one INSERT), answer. No Redis, no Celery here.

Every request is stored whatever its outcome, so the trader's log shows exactly what arrived and why
it was refused. Processing (turning the alert into an order) happens after the answer.

Core SQL on one connection, and the venue's symbol rules remembered for a while: a burst of alerts is
paid for by the web's CPU, and the ORM cost more than everything else here together.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert

from core.infra.config import get_settings
from core.infra.db import utcnow
from core.infra.security import register_secret
from core.models import SymbolRule, Webhook, WebhookAlert
from core.webhooks.payload import (
    MAX_BODY_BYTES,
    Alert,
    AlertRejected,
    check_content_type,
    check_freshness,
    decode_body,
    idempotency_key,
    parse_alert,
)
from core.webhooks.setup import token_hash

log = logging.getLogger(__name__)

MAX_ADDRESS_LENGTH = 64  # the column's width: a forged X-Forwarded-For hop is cut, never a database error
HEADERS_KEPT = ("content-type", "content-length", "user-agent", "x-forwarded-for", "x-real-ip")
STORED_BODY_LIMIT = 2048  # what is kept of a refused oversized body, for the log
# Found rules change when the markets are reloaded (daily at most): a little staleness is harmless.
# A symbol not found is not remembered, so loading the markets takes effect at once.
RULES_TTL_S = 30.0

_FIND_WEBHOOK = select(
    Webhook.id,
    Webhook.broker_id,
    Webhook.symbol,
    Webhook.size_mode,
    Webhook.size_value,
    Webhook.allowed_actions,
    Webhook.ip_allowlist,
    Webhook.trust_proxy,
    Webhook.rate_limit_per_minute,
    Webhook.paused,
    Webhook.paused_reason,
).where(Webhook.token_hash == bindparam("token_hash"))
_ALERTS = cast(Table, WebhookAlert.__table__)  # declared with a Table: typed as any FromClause
_STORE = insert(_ALERTS).returning(_ALERTS.c.id)
_STORE_ONCE = insert(_ALERTS).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(_ALERTS.c.id)
_SYMBOL_RULES = select(SymbolRule.rules).where(
    SymbolRule.broker_id == bindparam("broker_id"), SymbolRule.symbol == bindparam("symbol")
)
_ANY_SYMBOL = select(SymbolRule.id).where(SymbolRule.broker_id == bindparam("broker_id")).limit(1)
_found_rules: dict[tuple[int, str], tuple[float, dict[str, Any]]] = {}


@dataclass(frozen=True)
class IncomingRequest:
    """An HTTP request to a webhook URL, as the web layer read it."""

    token: str
    body: bytes  # at most MAX_BODY_BYTES + 1 bytes were read
    body_size: int  # the size the sender declared (or read)
    content_type: str | None
    peer_address: str | None  # the TCP peer
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    http_status: int
    status: str  # accepted | rejected | duplicate | unknown
    reason: str | None = None
    alert_id: int | None = None
    webhook_id: int | None = None

    def as_json(self) -> dict[str, str | int]:
        answer: dict[str, str | int] = {"status": self.status}
        if self.reason:
            answer["reason"] = self.reason
        if self.alert_id is not None:
            answer["alert_id"] = self.alert_id
        return answer


class RateLimiter:
    """Sliding one-minute window per webhook, in process memory: it must keep working when Redis is down."""

    def __init__(self, window_seconds: float = 60.0) -> None:
        self.window = window_seconds
        self._hits: dict[int, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: int, limit: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append(now)
            return True


RATE_LIMITER = RateLimiter()


def source_address(peer: str | None, headers: dict[str, str], trust_proxy: bool) -> str | None:
    """The sender's address. X-Forwarded-For is believed only behind a proxy the trader declared,
    and then only its last hop (the one our proxy appended): earlier entries are the sender's to forge."""
    if trust_proxy:
        forwarded = [part.strip() for part in headers.get("x-forwarded-for", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1][:MAX_ADDRESS_LENGTH]
    return peer


def address_allowed(address: str | None, allowlist: list[str]) -> bool:
    if not allowlist:
        return True
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(entry, strict=False) for entry in allowlist)


def _rule_decimal(rules: dict[str, Any], *names: str) -> Decimal:
    for name in names:
        if rules.get(name) not in (None, ""):
            return Decimal(str(rules[name]))
    return Decimal(0)


def _rules_of(connection: Connection, broker_id: int, symbol: str) -> dict[str, Any] | None:
    """The symbol's rules (None: not listed, or the markets were never loaded)."""
    now = time.monotonic()
    remembered = _found_rules.get((broker_id, symbol))
    if remembered is not None and now - remembered[0] < RULES_TTL_S:
        return remembered[1]
    row = connection.execute(_SYMBOL_RULES, {"broker_id": broker_id, "symbol": symbol}).first()
    if row is None:
        return None
    if len(_found_rules) > 10_000:
        _found_rules.clear()
    _found_rules[(broker_id, symbol)] = (now, row[0] or {})
    return row[0] or {}


def check_against_venue(connection: Connection, webhook: Row[Any], alert: Alert) -> None:
    """Refuse symbols the broker does not list and sizes under the venue's minimums.

    Only possible once the broker's markets were loaded; before that the order pipeline checks."""
    rules = _rules_of(connection, webhook.broker_id, alert.symbol)
    if rules is None:
        if connection.execute(_ANY_SYMBOL, {"broker_id": webhook.broker_id}).first():
            raise AlertRejected(422, f"symbol {alert.symbol} is not listed on this broker")
        return
    if alert.action not in ("buy", "sell"):
        return
    min_qty = _rule_decimal(rules, "min_qty", "minQty")
    min_notional = _rule_decimal(rules, "min_notional", "minNotional")
    quantity = (
        alert.quantity
        if alert.quantity is not None
        else (webhook.size_value if webhook.size_mode == "quantity" else None)
    )
    if quantity is not None:
        if quantity < min_qty:
            raise AlertRejected(422, f"size {quantity} is below the {alert.symbol} minimum quantity {min_qty}")
        if alert.price is not None and quantity * alert.price < min_notional:
            raise AlertRejected(
                422, f"order value {quantity * alert.price} is below the {alert.symbol} minimum notional {min_notional}"
            )
    elif webhook.size_mode == "quote" and webhook.size_value < min_notional:
        raise AlertRejected(
            422, f"size {webhook.size_value} is below the {alert.symbol} minimum notional {min_notional}"
        )


def _storable(text: str) -> str:
    """Postgres text and JSON cannot hold NUL: it is shown as the replacement character instead."""
    return text.replace("\x00", "\ufffd")


def _store(connection: Connection, values: dict[str, Any]) -> int | None:
    """One INSERT. With an idempotency key already taken, nothing is inserted and None comes back."""
    return connection.execute(_STORE_ONCE if values.get("idempotency_key") else _STORE, values).scalar()


def _judge(
    connection: Connection, webhook: Row[Any], incoming: IncomingRequest, source: str | None, received_at: datetime
) -> tuple[Alert, str]:
    """The validated alert and its idempotency key, or AlertRejected."""
    if incoming.body_size > MAX_BODY_BYTES or len(incoming.body) > MAX_BODY_BYTES:
        raise AlertRejected(
            413, f"body of {max(incoming.body_size, len(incoming.body))} bytes is over the {MAX_BODY_BYTES} byte limit"
        )
    if not address_allowed(source, webhook.ip_allowlist):
        raise AlertRejected(403, f"source address {source} is not on this webhook's allow-list")
    if not RATE_LIMITER.allow(webhook.id, webhook.rate_limit_per_minute):
        raise AlertRejected(429, f"rate limit of {webhook.rate_limit_per_minute} alerts per minute exceeded")
    check_content_type(incoming.content_type)
    if webhook.paused:
        raise AlertRejected(409, f"paused: {webhook.paused_reason or 'paused by the trader'}")
    body = decode_body(incoming.body)
    alert = parse_alert(body, fixed_symbol=webhook.symbol, allowed_actions=webhook.allowed_actions)
    window = get_settings().file.webhooks
    check_freshness(alert.time, received_at, max_age_s=window.max_alert_age_s, max_ahead_s=window.max_alert_ahead_s)
    check_against_venue(connection, webhook, alert)
    return alert, idempotency_key(webhook.id, body, alert.time, received_at)


def receive(connection: Connection, incoming: IncomingRequest) -> Receipt:
    """Store the request and decide the answer. The caller commits, then answers, then processes."""
    received_at = utcnow()
    webhook = connection.execute(_FIND_WEBHOOK, {"token_hash": token_hash(incoming.token)}).first()
    if webhook is not None:
        register_secret(incoming.token)  # the token is in the URL: mask it in this process's access logs
    source = source_address(incoming.peer_address, incoming.headers, bool(webhook and webhook.trust_proxy))
    if webhook is None:  # not stored: core/webhooks/strangers.py counts it in Redis
        log.info("webhook_unknown_token", extra={"source_ip": source})
        return Receipt(404, "unknown")
    values = {
        "webhook_id": webhook.id,
        "received_at": received_at,
        "source_ip": source,
        "headers": {name: _storable(value[:300]) for name, value in incoming.headers.items() if name in HEADERS_KEPT},
        "body": _storable(
            incoming.body[: STORED_BODY_LIMIT if incoming.body_size > MAX_BODY_BYTES else None].decode(
                "utf-8", "replace"
            )
        ),
        "body_size": max(incoming.body_size, len(incoming.body)),
    }
    try:
        alert, key = _judge(connection, webhook, incoming, source, received_at)
    except AlertRejected as rejection:
        alert_id = _store(
            connection,
            {**values, "status": "rejected", "http_status": rejection.http_status, "reason": rejection.reason},
        )
        log.info(
            "webhook_alert_rejected",
            extra={
                "webhook_id": webhook.id,
                "alert_id": alert_id,
                "reason": rejection.reason,
                "http_status": rejection.http_status,
            },
        )
        return Receipt(rejection.http_status, "rejected", rejection.reason, alert_id, webhook.id)
    accepted = {
        **values,
        "status": "accepted",
        "http_status": 202,
        "idempotency_key": key,
        "action": alert.action,
        "symbol": alert.symbol,
        "payload": alert.as_json(),
        "alert_time": alert.time,
    }
    alert_id = _store(connection, accepted)
    if alert_id is not None:
        return Receipt(202, "accepted", None, alert_id, webhook.id)
    original = connection.execute(select(WebhookAlert.id).where(WebhookAlert.idempotency_key == key)).scalar()
    duplicate_id = _store(
        connection,
        {
            **accepted,
            "status": "duplicate",
            "http_status": 200,
            "idempotency_key": None,
            "duplicate_of_id": original,
            "reason": f"same alert as #{original}",
        },
    )
    log.info(
        "webhook_alert_duplicate", extra={"webhook_id": webhook.id, "alert_id": duplicate_id, "original_id": original}
    )
    return Receipt(200, "duplicate", f"same alert as #{original}", duplicate_id, webhook.id)
