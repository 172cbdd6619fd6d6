"""Reading finished backtest runs: the user's runs, trades as CSV, metrics in display order, the best
entry of a grid."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from core.backtest.engine import TRADE_CSV_FIELDS
from core.backtest.run_params import LOWER_IS_BETTER
from core.models import BacktestRun, StrategyVersion

# Display order (JSONB does not keep the engine's key order); unknown metrics follow alphabetically.
METRIC_ORDER = (
    "total_return_pct", "buy_and_hold_return_pct", "cagr_pct", "sharpe", "sortino", "calmar",
    "max_drawdown_pct", "max_drawdown_intraday_pct", "max_drawdown_duration_days", "num_trades",
    "winning_trades", "losing_trades", "breakeven_trades", "win_rate_pct", "profit_factor", "expectancy",
    "expectancy_pct", "avg_win", "avg_loss", "best_trade_pct", "worst_trade_pct", "exposure_pct", "fees_paid",
    "start_cash", "final_equity", "days", "annualization_days",
)  # fmt: skip


_WITH_STRATEGY = selectinload(BacktestRun.strategy_version).selectinload(StrategyVersion.strategy)


def list_runs(session: Session, user_id: int, limit: int = 200) -> list[BacktestRun]:
    stmt = (
        select(BacktestRun)
        .where(BacktestRun.user_id == user_id)
        .options(_WITH_STRATEGY)
        .order_by(BacktestRun.created_at.desc(), BacktestRun.id.desc())
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def owned_runs(session: Session, user_id: int, run_ids: Iterable[int]) -> list[BacktestRun]:
    """Runs by id in the order asked; LookupError if any is not this user's (or does not exist)."""
    ids = list(dict.fromkeys(run_ids))
    found = {
        r.id: r
        for r in session.execute(
            select(BacktestRun).where(BacktestRun.id.in_(ids), BacktestRun.user_id == user_id).options(_WITH_STRATEGY)
        ).scalars()
    }
    if len(found) != len(ids):
        raise LookupError("no such backtest run")
    return [found[i] for i in ids]


def trades_csv(run: BacktestRun) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=TRADE_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(run.trades or [])
    return out.getvalue()


def ordered_metric_names(names: Iterable[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(METRIC_ORDER)}
    return sorted(set(names), key=lambda name: (rank.get(name, len(rank)), name))


def ordered_metrics(metrics: dict | None) -> list[tuple[str, Any]]:
    values = metrics or {}
    return [(name, values[name]) for name in ordered_metric_names(values)]


def compare_metric_rows(runs: list[BacktestRun]) -> list[tuple[str, list]]:
    """(metric, [value per run]) for every metric any of the runs has, in display order."""
    names = ordered_metric_names(name for run in runs for name in (run.metrics or {}))
    return [(name, [(run.metrics or {}).get(name) for run in runs]) for name in names]


def best_grid_entry(run: BacktestRun) -> dict | None:
    ranked = ranked_grid_entries(run.grid_results or [], run.grid_metric or "total_return_pct")
    return ranked[0] if ranked else None


def ranked_grid_entries(results: list[dict], metric: str) -> list[dict]:
    """The combinations that ran and have a finite `metric`, best first (ties keep the grid's order)."""
    scored = [r for r in results if r["status"] == "ok" and finite_number((r["metrics"] or {}).get(metric))]
    sign = -1 if metric in LOWER_IS_BETTER else 1
    return sorted(scored, key=lambda r: -sign * r["metrics"][metric])


def finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
