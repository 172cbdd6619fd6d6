"""Backtest runs started from the web: what was asked, how far it got, and what came out.

A grid run is one row too: its `grid` holds the values tried per parameter and `grid_results` one
entry per combination, so a whole parameter sweep is one job, one page and one line in the list.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Integer, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.infra.db import Base, utcnow
from core.models.strategies import StrategyVersion

RUN_STATUSES = ("queued", "running", "done", "failed")
RUN_KINDS = ("single", "grid")


class BacktestRun(Base):
    __tablename__ = "backtest_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    strategy_version_id: Mapped[int] = mapped_column(ForeignKey("strategy_versions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8), default="single")
    params: Mapped[dict] = mapped_column(JSONB, default=dict)  # overrides of the version's parameters
    grid: Mapped[dict | None] = mapped_column(JSONB)  # grid runs: {param: [values]}
    grid_metric: Mapped[str | None] = mapped_column(String(40))  # the metric the heatmap shows
    venue: Mapped[str] = mapped_column(String(16))
    symbol: Mapped[str] = mapped_column(String(32))
    timeframe: Mapped[str] = mapped_column(String(4))
    start_ms: Mapped[int | None] = mapped_column(BigInteger)  # first candle open time included
    end_ms: Mapped[int | None] = mapped_column(BigInteger)  # last candle open time included
    fee: Mapped[Decimal] = mapped_column(Numeric(12, 8))  # fraction of notional per fill
    slippage_bps: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    cash: Mapped[Decimal] = mapped_column(Numeric(38, 8))

    status: Mapped[str] = mapped_column(String(8), default="queued", index=True)
    stage: Mapped[str] = mapped_column(String(60), default="queued")
    progress: Mapped[int] = mapped_column(Integer, default=0)  # percent
    task_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[dict | None] = mapped_column(JSONB)  # {type/kind, message, line, candle_time, text}

    num_candles: Mapped[int | None] = mapped_column(Integer)
    final_equity: Mapped[Decimal | None] = mapped_column(Numeric(38, 8))
    metrics: Mapped[dict | None] = mapped_column(JSONB)
    notes: Mapped[dict | None] = mapped_column(JSONB)  # why a metric is None
    resolved_params: Mapped[dict | None] = mapped_column(JSONB)  # defaults + overrides, as the engine ran
    trades: Mapped[list | None] = mapped_column(JSONB)
    series: Mapped[dict | None] = mapped_column(JSONB)  # {time_ms, equity, drawdown}, downsampled for charts
    gaps: Mapped[list | None] = mapped_column(JSONB)
    grid_results: Mapped[list | None] = mapped_column(JSONB)  # [{params, status, metrics, error}]

    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    strategy_version: Mapped[StrategyVersion] = relationship()

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
