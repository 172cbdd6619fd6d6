"""Platform-wide switches an administrator turns on and off (the global trading halt)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.infra.db import Base, utcnow


class SystemSwitch(Base):
    """One named switch; a missing row is a switch that was never turned on."""

    __tablename__ = "system_switches"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<SystemSwitch {self.name} {'on' if self.enabled else 'off'}>"
