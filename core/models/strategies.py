from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.infra.db import Base, utcnow


class StrategyRecord(Base):
    """A user's strategy. Its code lives in versions: every save is kept, so any can be diffed or restored."""

    __tablename__ = "strategies"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    versions: Mapped[list[StrategyVersion]] = relationship(
        back_populates="strategy", order_by="StrategyVersion.number", cascade="all, delete-orphan"
    )

    @property
    def latest(self) -> StrategyVersion | None:
        return self.versions[-1] if self.versions else None


class StrategyVersion(Base):
    __tablename__ = "strategy_versions"
    __table_args__ = (UniqueConstraint("strategy_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    strategy_id: Mapped[int] = mapped_column(ForeignKey("strategies.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    code: Mapped[str] = mapped_column(Text)  # kept exactly as typed, valid or not
    params: Mapped[dict] = mapped_column(JSONB, default=dict)  # the user's parameter values
    valid: Mapped[bool] = mapped_column(default=False)
    errors: Mapped[list] = mapped_column(JSONB, default=list)  # [{line, col, message}] from validation
    class_name: Mapped[str | None] = mapped_column(String(80))
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    strategy: Mapped[StrategyRecord] = relationship(back_populates="versions")
