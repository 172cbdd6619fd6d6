"""Arbitrage engine records: intents (written before any leg is sent), legs, and the persisted position.

A crash at any point is recovered from these rows plus the venues' own positions: an intent that is
not `done` at start-up is resolved against the venues, never guessed.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.infra.db import Base, utcnow

Amount = Numeric(38, 18)

INTENT_OPEN_STATES = ("pending", "sent")  # anything else is final
# Where the arb process publishes its status (read by the web page): a JSON string key + a channel.
STATUS_TTL_S = 15


class ArbIntent(Base):
    """One decision to trade both venues (entry, exit) or one (rollback, flatten)."""

    __tablename__ = "arb_intents"
    __table_args__ = (Index("ix_arb_intents_pair_state", "pair", "state"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    pair: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # entry | exit | rollback | flatten
    direction: Mapped[str] = mapped_column(String(32))  # e.g. long_vest_short_paradex
    size: Mapped[Decimal] = mapped_column(Amount)
    spread_bps: Mapped[Decimal | None] = mapped_column(Numeric(20, 6))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|done|failed|recovered
    # Venue positions (signed) just before sending: recovery compares the venues with these.
    before: Mapped[dict] = mapped_column(JSONB, default=dict)
    outcome: Mapped[dict] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    legs: Mapped[list[ArbLeg]] = relationship(
        back_populates="intent", order_by="ArbLeg.id", cascade="all, delete-orphan"
    )
    funding_payments: Mapped[list[ArbFunding]] = relationship(
        back_populates="intent", order_by="ArbFunding.id", cascade="all, delete-orphan"
    )


class ArbLeg(Base):
    """One order attempt on one venue; a retry is a new row with a new client id."""

    __tablename__ = "arb_legs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    intent_id: Mapped[int] = mapped_column(ForeignKey("arb_intents.id", ondelete="CASCADE"), index=True)
    venue: Mapped[str] = mapped_column(String(16))
    market: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    size: Mapped[Decimal] = mapped_column(Amount)
    reduce_only: Mapped[bool] = mapped_column(default=False)
    attempt: Mapped[int] = mapped_column(default=1)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|filled|partial|rejected|unknown|none
    venue_order_id: Mapped[str | None] = mapped_column(String(80))
    filled_size: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    avg_price: Mapped[Decimal | None] = mapped_column(Amount)
    fee: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    intent: Mapped[ArbIntent] = relationship(back_populates="legs")


class ArbFunding(Base):
    """One funding payment a venue settled on a leg (+ received, - paid), attributed to the intent whose position
    it was paid on: the last intent with a fill that left the pair's position open (arb/carry.py)."""

    __tablename__ = "arb_funding"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    pair: Mapped[str] = mapped_column(String(64), index=True)
    intent_id: Mapped[int | None] = mapped_column(ForeignKey("arb_intents.id", ondelete="CASCADE"), index=True)
    venue: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Amount)
    booked_at: Mapped[datetime] = mapped_column(default=utcnow)

    intent: Mapped[ArbIntent | None] = relationship(back_populates="funding_payments")


class ArbPosition(Base):
    """The engine's position for one pair (signed size per venue), restored and reconciled at start."""

    __tablename__ = "arb_positions"

    pair: Mapped[str] = mapped_column(String(64), primary_key=True)
    direction: Mapped[str | None] = mapped_column(String(32))
    sizes: Mapped[dict] = mapped_column(JSONB, default=dict)  # venue -> signed size (text)
    entry_prices: Mapped[dict] = mapped_column(JSONB, default=dict)  # venue -> avg entry price (text)
    entry_spread_bps: Mapped[Decimal | None] = mapped_column(Numeric(20, 6))
    cash: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))  # signed cash flow of the open trade
    realized_pnl: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))  # on pnl_day, after fees
    pnl_day: Mapped[date | None] = mapped_column(Date)
    halted_reason: Mapped[str | None] = mapped_column(String(120))
    paused_by: Mapped[str | None] = mapped_column(String(64))  # the admin who paused the pair (entries stay off)
    loss_offset: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))  # pnl_day's P&L at an admin's reset
    opened_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ArbOperatorAction(Base):
    """One admin's control of the engine (pause, resume, dry run, kill switch reset, flatten): written by the
    web when it queues the command (core/arb_commands.py), its result written by the engine when it answers."""

    __tablename__ = "arb_operator_actions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    pair: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(64))  # kept when the user is deleted
    result: Mapped[str] = mapped_column(Text, default="queued")  # queued | done: … | refused: … | not queued: …
