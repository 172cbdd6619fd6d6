"""TradingView webhooks: the automation a trader sets up, every request it received, and the MISS ledger."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.infra.db import Base, utcnow

Amount = Numeric(38, 18)


class Webhook(Base):
    """One TradingView automation: a secret URL that turns alerts into orders on one broker."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    broker_id: Mapped[int] = mapped_column(ForeignKey("broker_connections.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # Only the hash is searchable; the token itself is kept Fernet-encrypted so the page can show the URL.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_enc: Mapped[str] = mapped_column(String(512))
    symbol: Mapped[str | None] = mapped_column(String(32))  # None: take the symbol from the alert
    size_mode: Mapped[str] = mapped_column(String(16), default="quote")  # quantity | quote | percent
    size_value: Mapped[Decimal] = mapped_column(Amount)
    allowed_actions: Mapped[list] = mapped_column(JSONB, default=lambda: ["buy", "sell", "close", "cancel"])
    cadence: Mapped[str | None] = mapped_column(String(4))  # a timeframe, or None: no MISS detection
    grace_seconds: Mapped[int] = mapped_column(Integer, default=15)
    ip_allowlist: Mapped[list] = mapped_column(JSONB, default=list)  # empty: any sender
    trust_proxy: Mapped[bool] = mapped_column(default=False)  # read X-Forwarded-For only when set
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer, default=120)
    paused: Mapped[bool] = mapped_column(default=False)
    paused_reason: Mapped[str | None] = mapped_column(String(200))
    paused_at: Mapped[datetime | None]
    consecutive_misses: Mapped[int] = mapped_column(Integer, default=0)
    # MISS detection starts at the first full period after creation or resume; evaluated up to here.
    cadence_from: Mapped[datetime | None]
    evaluated_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Webhook {self.id} {self.name!r}>"


class WebhookAlert(Base):
    """One HTTP request to a webhook URL, stored before anything else happens, whatever its outcome."""

    __tablename__ = "webhook_alerts"
    __table_args__ = (
        Index("ix_webhook_alerts_webhook_received", "webhook_id", "received_at"),
        Index("ix_webhook_alerts_unprocessed", "status", "processed_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    webhook_id: Mapped[int | None] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_ip: Mapped[str | None] = mapped_column(String(64))
    headers: Mapped[dict] = mapped_column(JSONB, default=dict)
    body: Mapped[str] = mapped_column(Text, default="")
    body_size: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12))  # accepted | rejected | duplicate
    http_status: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(300))
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str | None] = mapped_column(String(8))
    symbol: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict | None] = mapped_column(JSONB)  # the validated alert, as processing reads it
    alert_time: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
    process_result: Mapped[str | None] = mapped_column(String(300))
    order_ids: Mapped[list] = mapped_column(JSONB, default=list)

    def __repr__(self) -> str:
        return f"<WebhookAlert {self.id} {self.status}>"


class WebhookExpectation(Base):
    """One period of a webhook's cadence: did its alert come (hit), come within the grace (late), or not (miss)."""

    __tablename__ = "webhook_expectations"
    __table_args__ = (UniqueConstraint("webhook_id", "period_start"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(8))  # hit | late | miss
    alert_id: Mapped[int | None] = mapped_column(BigInteger)
    evaluated_at: Mapped[datetime] = mapped_column(default=utcnow)
