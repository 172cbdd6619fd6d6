from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.infra.db import Base, utcnow
from core.orders.states import OrderState, check_transition

Amount = Numeric(38, 18)


class Order(Base):
    """Our record of one order. Written (state `new`) before anything is sent to the venue."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_user_state", "user_id", "state"),
        # What a webhook, bot or ticket placed (webhook alerts look up their orders by it).
        Index("ix_orders_source_ref", "source", "source_ref"),
        # Protective / OCO orders of a market: a small part of the table, looked up on every alert.
        Index("ix_orders_linked_by_market", "broker_id", "symbol", postgresql_where=text("oco_group IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    broker_id: Mapped[int] = mapped_column(ForeignKey("broker_connections.id", ondelete="RESTRICT"), index=True)
    client_order_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    venue_order_id: Mapped[str | None] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    type: Mapped[str] = mapped_column(String(24))
    quantity: Mapped[Decimal | None] = mapped_column(Amount)
    quote_quantity: Mapped[Decimal | None] = mapped_column(Amount)
    price: Mapped[Decimal | None] = mapped_column(Amount)
    stop_price: Mapped[Decimal | None] = mapped_column(Amount)
    time_in_force: Mapped[str] = mapped_column(String(3), default="GTC")
    state: Mapped[str] = mapped_column(String(20), default=OrderState.NEW.value)
    filled_quantity: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    average_price: Mapped[Decimal | None] = mapped_column(Amount)
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="manual")  # manual | webhook | bot | oco
    source_ref: Mapped[str | None] = mapped_column(String(64))
    oco_group: Mapped[str | None] = mapped_column(String(64), index=True)
    trail_pct: Mapped[Decimal | None] = mapped_column(Amount)  # a trailing stop's trail; stop_price: its activation
    ladder_group: Mapped[str | None] = mapped_column(String(64))  # the take-profit ladder this rung belongs to
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", order_by="OrderEvent.id", cascade="all, delete-orphan"
    )
    fills: Mapped[list[Fill]] = relationship(back_populates="order", order_by="Fill.id")

    def move_to(self, target: OrderState, cause: str, detail: dict | None = None) -> OrderEvent:
        """Apply one transition of the state machine and record it (time, cause, detail)."""
        check_transition(self.state, target)
        event = OrderEvent(from_state=self.state, to_state=target.value, cause=cause, detail=detail or {})
        self.state = target.value
        self.events.append(event)
        return event

    @property
    def is_final(self) -> bool:
        return self.state in {"filled", "cancelled", "rejected", "expired"}

    def __repr__(self) -> str:
        return f"<Order {self.id} {self.side} {self.type} {self.symbol} {self.state}>"


class TrailingWatch(Base):
    """An emulated trailing stop (the venue has none): its order stays `new` while Aristobot follows the
    heartbeat's prices; `triggered_at` is the one claim that turns it into a market order, sent once."""

    __tablename__ = "trailing_watches"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    extreme: Mapped[Decimal | None] = mapped_column(Amount)  # the best price since it activated; None: not yet
    trigger_price: Mapped[Decimal | None] = mapped_column(Amount)  # the price that crossed it
    triggered_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OrderEvent(Base):
    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    cause: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSONB, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship(back_populates="events")


class Fill(Base):
    """Our own fill ledger: each venue trade stored once, whatever the venue keeps."""

    __tablename__ = "fills"
    __table_args__ = (
        UniqueConstraint("broker_id", "symbol", "venue_trade_id"),
        # A user's fills in ledger order (core/ledger: its load, and its cache's watermark from the index
        # alone) and by symbol (the Statistics page's symbol choices).
        Index("ix_fills_user_ledger_order", "user_id", "traded_at", "id"),
        Index("ix_fills_user_symbol", "user_id", "symbol"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    broker_id: Mapped[int] = mapped_column(ForeignKey("broker_connections.id", ondelete="RESTRICT"))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    venue_trade_id: Mapped[str] = mapped_column(String(64))
    price: Mapped[Decimal] = mapped_column(Amount)
    quantity: Mapped[Decimal] = mapped_column(Amount)
    fee: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))
    fee_asset: Mapped[str | None] = mapped_column(String(16))
    traded_at: Mapped[datetime]

    order: Mapped[Order | None] = relationship(back_populates="fills")
