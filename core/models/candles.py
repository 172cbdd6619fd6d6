from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from core.infra.db import Base

Price = Numeric(38, 12)
CANDLE_SOURCES = ("feed", "import", "download")  # the live feed's upsert corrects the other two, never the reverse


class Candle(Base):
    """A closed candle. Unique per (venue, symbol, timeframe, open time): re-imports are idempotent."""

    __tablename__ = "candles"
    __table_args__ = (CheckConstraint(f"source IN ({', '.join(repr(s) for s in CANDLE_SOURCES)})", name="source"),)

    venue: Mapped[str] = mapped_column(String(16), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(4), primary_key=True)
    open_time: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # ms since epoch, UTC
    open: Mapped[Decimal] = mapped_column(Price)
    high: Mapped[Decimal] = mapped_column(Price)
    low: Mapped[Decimal] = mapped_column(Price)
    close: Mapped[Decimal] = mapped_column(Price)
    volume: Mapped[Decimal] = mapped_column(Numeric(38, 12))
    source: Mapped[str] = mapped_column(String(8), server_default="import")
