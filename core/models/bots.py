"""Bots: a pinned strategy version run live on every candle close of one symbol, and the log of its ticks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.infra.db import Base, utcnow

BOT_STATES = ("running", "paused", "error")


class Bot(Base):
    """One live automation. `state` is running, paused (by the trader or an auth failure) or error
    (the strategy failed: `last_error` holds {type, message, line, candle_time})."""

    __tablename__ = "bots"
    __table_args__ = (
        UniqueConstraint("user_id", "name"),
        Index("ix_bots_market_state", "venue", "symbol", "timeframe", "state"),
        Index("ix_bots_source_state", "source_venue", "source_symbol", "timeframe", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # Pinned: saving a new version of the strategy never changes what a running bot executes. A deleted
    # strategy leaves the bot (and its orders) in place; its next tick stops it with a clear error.
    strategy_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("strategy_versions.id", ondelete="SET NULL"), index=True
    )
    params: Mapped[dict] = mapped_column(JSONB, default=dict)  # overrides on top of the version's
    broker_id: Mapped[int] = mapped_column(ForeignKey("broker_connections.id", ondelete="RESTRICT"), index=True)
    venue: Mapped[str] = mapped_column(String(16))  # the execution broker's venue
    symbol: Mapped[str] = mapped_column(String(32))  # what the bot trades there
    # The signal source: whose candles (venue, symbol, timeframe) tick the bot and feed its strategy;
    # the broker's own market unless given (core.bots.source picks the heartbeat's for new bots).
    source_venue: Mapped[str] = mapped_column(String(16), default=lambda ctx: ctx.get_current_parameters()["venue"])
    source_symbol: Mapped[str] = mapped_column(String(32), default=lambda ctx: ctx.get_current_parameters()["symbol"])
    timeframe: Mapped[str] = mapped_column(String(4))
    candles_needed: Mapped[int] = mapped_column(Integer, default=500)
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=10)  # per decision, wall clock and CPU
    state: Mapped[str] = mapped_column(String(8), default="paused")
    last_error: Mapped[dict | None] = mapped_column(JSONB)
    last_tick_at: Mapped[datetime | None]
    last_candle_time: Mapped[int | None] = mapped_column(BigInteger)
    last_decision: Mapped[dict | None] = mapped_column(JSONB)
    # Stop-loss/take-profit asked for with an entry, waiting for the entry's fill: {order_id, stop_loss, take_profit}.
    pending_protection: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def source_ref(self) -> str:
        """What the bot's orders carry in Order.source_ref."""
        return str(self.id)

    def __repr__(self) -> str:
        return f"<Bot {self.id} {self.name!r} {self.symbol} {self.timeframe} {self.state}>"


class BotTick(Base):
    """One candle close a bot acted on. Unique per (bot, candle): a redelivered tick finds it and does nothing."""

    __tablename__ = "bot_ticks"
    __table_args__ = (UniqueConstraint("bot_id", "candle_time"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"), index=True)
    candle_time: Mapped[int] = mapped_column(BigInteger)  # open time (ms UTC) of the candle that closed
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(16))  # hold | enter | exit | skip | error
    decision: Mapped[dict | None] = mapped_column(JSONB)
    note: Mapped[str] = mapped_column(String(300), default="")
    order_ids: Mapped[list] = mapped_column(JSONB, default=list)
    error: Mapped[dict | None] = mapped_column(JSONB)
    duration_ms: Mapped[int | None] = mapped_column(Integer)


class BotChange(Base):
    """One edit of a paused bot's settings, by whom and when: only the fields that changed, `before` and
    `after` (a changed parameter is listed under "params" by its name; absent on one side: the version's default)."""

    __tablename__ = "bot_changes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    before: Mapped[dict] = mapped_column(JSONB)
    after: Mapped[dict] = mapped_column(JSONB)
