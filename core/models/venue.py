"""What the venues told us, kept beside our typed rows: every raw answer about an order (the audit trail),
what reconciliation found changed at the venue, and the balances it last agreed with."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.infra.db import Base, utcnow
from core.models.orders import Amount


class VenueAnswer(Base):
    """One answer of the venue to a request about an order (place, query or cancel), raw and bounded
    (core.exchanges.answers). The same answer heard again (same digest) is stored once."""

    __tablename__ = "venue_answers"
    __table_args__ = (UniqueConstraint("order_id", "digest"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # place | query | cancel
    at: Mapped[datetime] = mapped_column(default=utcnow)
    http_status: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(JSONB)


class VenueFinding(Base):
    """Something reconciliation found done at the venue outside Aristobot: an external order, a balance
    that drifted from what our fills imply, a protective exit cancelled or changed. `bot_id` /
    `webhook_id` flag the automation it concerns; `replacement_order_id` the exit placed again."""

    __tablename__ = "venue_findings"
    __table_args__ = (Index("ix_venue_findings_user_found", "user_id", "found_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    broker_id: Mapped[int] = mapped_column(ForeignKey("broker_connections.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    bot_id: Mapped[int | None] = mapped_column(ForeignKey("bots.id", ondelete="SET NULL"), index=True)
    webhook_id: Mapped[int | None] = mapped_column(ForeignKey("webhooks.id", ondelete="SET NULL"), index=True)
    replacement_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    detail: Mapped[dict] = mapped_column(JSONB, default=dict)
    found_at: Mapped[datetime] = mapped_column(default=utcnow)


class VenueBalance(Base):
    """The balance of one asset reconciliation last agreed with, and when: what our fills since then
    must explain (core.orders.venue_balances)."""

    __tablename__ = "venue_balances"

    broker_id: Mapped[int] = mapped_column(ForeignKey("broker_connections.id", ondelete="CASCADE"), primary_key=True)
    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(Amount)
    at: Mapped[datetime]
