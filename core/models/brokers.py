from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.infra.db import Base, utcnow
from core.infra.security import decrypt_secret, encrypt_secret


class BrokerConnection(Base):
    """An exchange account of a user. Credentials are stored only Fernet-encrypted."""

    __tablename__ = "broker_connections"
    __table_args__ = (UniqueConstraint("user_id", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    venue: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(64))
    api_key_enc: Mapped[str] = mapped_column(String(512))
    api_secret_enc: Mapped[str] = mapped_column(String(1024))
    passphrase_enc: Mapped[str | None] = mapped_column(String(512))
    base_url: Mapped[str | None] = mapped_column(String(255))
    testnet: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    markets_loaded_at: Mapped[datetime | None]

    def set_credentials(self, api_key: str, api_secret: str, passphrase: str | None = None) -> None:
        self.api_key_enc = encrypt_secret(api_key)
        self.api_secret_enc = encrypt_secret(api_secret)
        self.passphrase_enc = encrypt_secret(passphrase) if passphrase else None

    def credentials(self) -> dict:
        return {
            "api_key": decrypt_secret(self.api_key_enc),
            "api_secret": decrypt_secret(self.api_secret_enc),
            "passphrase": decrypt_secret(self.passphrase_enc) if self.passphrase_enc else None,
        }

    @property
    def masked_key(self) -> str:
        key = decrypt_secret(self.api_key_enc)
        return f"{key[:4]}…{key[-2:]}" if len(key) > 8 else "…"

    def __repr__(self) -> str:
        return f"<BrokerConnection {self.id} {self.venue} {self.label!r}>"


class SymbolRule(Base):
    """Trading rules of a symbol as loaded from a broker's venue ("Load markets")."""

    __tablename__ = "symbol_rules"
    __table_args__ = (UniqueConstraint("broker_id", "symbol"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    broker_id: Mapped[int] = mapped_column(ForeignKey("broker_connections.id", ondelete="CASCADE"), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    base: Mapped[str] = mapped_column(String(16))
    quote: Mapped[str] = mapped_column(String(16))
    rules: Mapped[dict] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
