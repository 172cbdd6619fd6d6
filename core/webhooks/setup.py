"""Creating, changing, pausing and resuming a trader's webhooks."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.infra.db import utcnow
from core.infra.security import decrypt_secret, encrypt_secret
from core.models import BrokerConnection, Webhook
from core.webhooks.cadence import TIMEFRAME_SECONDS, next_period_start
from core.webhooks.payload import ACTIONS, amount_problem, normalize_symbol

log = logging.getLogger(__name__)

SIZE_MODES = ("quantity", "quote", "percent")
# TradingView's published webhook sender addresses (https://www.tradingview.com/support/solutions/43000529348).
TRADINGVIEW_IPS = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")


class WebhookSettingsError(ValueError):
    """A webhook setting a trader typed is not usable; the message says which and why."""


@dataclass(frozen=True)
class WebhookSettings:
    name: str
    broker_id: int
    size_mode: str
    size_value: Decimal
    symbol: str | None = None
    allowed_actions: tuple[str, ...] = ACTIONS
    cadence: str | None = None
    grace_seconds: int = 15
    ip_allowlist: tuple[str, ...] = field(default_factory=tuple)
    trust_proxy: bool = False
    rate_limit_per_minute: int = 120


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def webhook_token(webhook: Webhook) -> str:
    return decrypt_secret(webhook.token_enc)


def parse_allowlist(text: str) -> tuple[str, ...]:
    """One address or network per line or comma; each is checked so a typo cannot lock TradingView out."""
    entries = [part for part in re.split(r"[,\s]+", text) if part]
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise WebhookSettingsError(f"{entry!r} is not an IP address or network") from None
    return tuple(entries)


def _validated(session: Session, user_id: int, settings: WebhookSettings) -> WebhookSettings:
    broker = session.get(BrokerConnection, settings.broker_id)
    if broker is None or broker.user_id != user_id:
        raise WebhookSettingsError("choose one of your broker connections")
    if not settings.name.strip():
        raise WebhookSettingsError("give the webhook a name")
    if settings.size_mode not in SIZE_MODES:
        raise WebhookSettingsError(f"size mode must be one of {', '.join(SIZE_MODES)}")
    problem = amount_problem(settings.size_value)
    if problem:
        raise WebhookSettingsError(f"default size {problem}")
    if settings.size_mode == "percent" and settings.size_value > 100:
        raise WebhookSettingsError("a percentage of the balance cannot exceed 100")
    unknown = set(settings.allowed_actions) - set(ACTIONS)
    if unknown or not settings.allowed_actions:
        raise WebhookSettingsError(f"allowed actions must be some of {', '.join(ACTIONS)}")
    if settings.cadence is not None and settings.cadence not in TIMEFRAME_SECONDS:
        raise WebhookSettingsError(f"cadence must be one of {', '.join(TIMEFRAME_SECONDS)} or none")
    if not 0 <= settings.grace_seconds <= 3600:
        raise WebhookSettingsError("grace must be between 0 and 3600 seconds")
    if not 1 <= settings.rate_limit_per_minute <= 10_000:
        raise WebhookSettingsError("rate limit must be between 1 and 10000 requests per minute")
    parse_allowlist("\n".join(settings.ip_allowlist))
    symbol = normalize_symbol(settings.symbol) if settings.symbol and settings.symbol.strip() else None
    return WebhookSettings(**{**settings.__dict__, "symbol": symbol, "name": settings.name.strip()})


def _apply(webhook: Webhook, settings: WebhookSettings) -> None:
    webhook.name = settings.name
    webhook.broker_id = settings.broker_id
    webhook.symbol = settings.symbol
    webhook.size_mode = settings.size_mode
    webhook.size_value = settings.size_value
    webhook.allowed_actions = list(settings.allowed_actions)
    webhook.grace_seconds = settings.grace_seconds
    webhook.ip_allowlist = list(settings.ip_allowlist)
    webhook.trust_proxy = settings.trust_proxy
    webhook.rate_limit_per_minute = settings.rate_limit_per_minute
    if settings.cadence != webhook.cadence:
        webhook.cadence = settings.cadence
        restart_cadence(webhook)


def restart_cadence(webhook: Webhook) -> None:
    """Expect alerts from the first full period on; the partial current one is never judged."""
    webhook.consecutive_misses = 0
    if webhook.cadence:
        webhook.cadence_from = next_period_start(utcnow(), webhook.cadence)
        webhook.evaluated_until = webhook.cadence_from
    else:
        webhook.cadence_from = webhook.evaluated_until = None


def create_webhook(session: Session, user_id: int, settings: WebhookSettings) -> tuple[Webhook, str]:
    """Returns the webhook and its secret token (the last part of its URL)."""
    settings = _validated(session, user_id, settings)
    token = secrets.token_urlsafe(24)
    webhook = Webhook(user_id=user_id, token_hash=token_hash(token), token_enc=encrypt_secret(token))
    _apply(webhook, settings)
    session.add(webhook)
    session.flush()
    log.info("webhook_created", extra={"user_id": user_id, "webhook_id": webhook.id, "broker_id": settings.broker_id})
    return webhook, token


def update_webhook(session: Session, webhook: Webhook, settings: WebhookSettings) -> Webhook:
    _apply(webhook, _validated(session, webhook.user_id, settings))
    return webhook


def rotate_token(webhook: Webhook) -> str:
    """A new secret URL; the old one answers 404 from now on."""
    token = secrets.token_urlsafe(24)
    webhook.token_hash, webhook.token_enc = token_hash(token), encrypt_secret(token)
    return token


def pause_webhook(webhook: Webhook, reason: str) -> None:
    webhook.paused, webhook.paused_reason, webhook.paused_at = True, reason[:200], utcnow()
    log.warning("webhook_paused", extra={"webhook_id": webhook.id, "user_id": webhook.user_id, "reason": reason})


def resume_webhook(webhook: Webhook) -> None:
    webhook.paused, webhook.paused_reason, webhook.paused_at = False, None, None
    restart_cadence(webhook)
    log.info("webhook_resumed", extra={"webhook_id": webhook.id, "user_id": webhook.user_id})


def webhooks_of(session: Session, user_id: int) -> list[Webhook]:
    return list(session.scalars(select(Webhook).where(Webhook.user_id == user_id).order_by(Webhook.id)))
