"""What a trader is told (the in-app notification centre) and where else it is sent (Apprise channels)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.infra.db import Base, utcnow
from core.infra.security import decrypt_secret, encrypt_secret

SEVERITIES = ("info", "warning", "error", "critical")


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


class Notification(Base):
    """One event a user is told about; `dedup_key` makes the same condition notify once per window."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_unread", "user_id", "read_at"),
        Index("ix_notifications_user_dedup", "user_id", "dedup_key", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    severity: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(255))
    dedup_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    # Outbound: none (no channel wants it), queued, sending (claimed by a worker), retrying, sent, failed,
    # rate_limited.
    delivery: Mapped[str] = mapped_column(String(16), default="none")
    delivery_error: Mapped[str | None] = mapped_column(String(300))

    def __repr__(self) -> str:
        return f"<Notification {self.id} {self.severity} {self.source} {self.title!r}>"


class NotificationChannel(Base):
    """An Apprise URL of a user (Telegram, e-mail, ntfy...), stored only Fernet-encrypted."""

    __tablename__ = "notification_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(64))
    url_enc: Mapped[str] = mapped_column(String(2048))
    scheme: Mapped[str] = mapped_column(String(32))  # shown beside the mask: "tgram", "json", "mailto"...
    min_severity: Mapped[str] = mapped_column(String(8), default="warning")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))

    def set_url(self, url: str) -> None:
        self.url_enc = encrypt_secret(url)
        self.scheme = url.split("://", 1)[0].lower()[:32]

    def url(self) -> str:
        return decrypt_secret(self.url_enc)

    @property
    def masked_url(self) -> str:
        """Only the scheme and the last two characters: the rest may be a token or a password."""
        url = self.url()
        return f"{self.scheme}://…{url[-2:]}" if len(url) > len(self.scheme) + 8 else f"{self.scheme}://…"

    def wants(self, severity: str) -> bool:
        return self.enabled and severity_rank(severity) >= severity_rank(self.min_severity)

    def __repr__(self) -> str:
        return f"<NotificationChannel {self.id} {self.scheme} {self.label!r}>"
