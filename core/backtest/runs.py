"""Backtest runs started from the web: create (validated, nothing queued on bad input), execute in
the sandbox on a worker, store results; parameter grids; the data the result pages show.

Lifecycle: queued -> running -> done | failed. `execute_run` is what the Celery task calls; it is
safe to call twice (a finished run is left alone, a run left `running` by a killed worker restarts).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import product
from typing import Any

import numpy as np
from sqlalchemy import Float, cast, func, select
from sqlalchemy.orm import Session, selectinload

from core import tasks
from core.backtest.budget import backtest_limits
from core.backtest.cli import TRADE_CSV_FIELDS
from core.backtest.engine import BacktestInputError, BacktestSettings
from core.bus import backtest_progress, backtest_run_progress, get_redis
from core.candles_csv import CANDLE_COLUMNS
from core.db import session_scope, utcnow
from core.models import BacktestRun, Candle, Strategy, StrategyVersion
from core.strategies.contract import ParamError, format_candle_time, resolve_params

logger = logging.getLogger(__name__)

SINGLE_JOB = "core.backtest.run_jobs:backtest_with_series"
GRID_JOB = "core.backtest.run_jobs:grid_chunk"

MAX_GRID_COMBINATIONS = 200
MAX_RUN_CANDLES = 600_000  # ~40 MB of JSON to the sandbox; beyond, narrow the date range
MAX_CHART_BARS = 5000
GRID_PROGRESS_STEPS = 20  # a grid reports progress after each of about this many chunks
MAX_PARAM_MAGNITUDE = 1e12

# Metrics a grid heatmap can rank by; for these a smaller value is the better one.
GRID_METRICS = (
    "total_return_pct", "cagr_pct", "sharpe", "sortino", "calmar", "max_drawdown_pct", "profit_factor",
    "win_rate_pct", "num_trades", "expectancy_pct", "exposure_pct", "fees_paid", "max_drawdown_duration_days",
)  # fmt: skip
# Display order (JSONB does not keep the engine's key order); unknown metrics follow alphabetically.
METRIC_ORDER = (
    "total_return_pct", "buy_and_hold_return_pct", "cagr_pct", "sharpe", "sortino", "calmar",
    "max_drawdown_pct", "max_drawdown_intraday_pct", "max_drawdown_duration_days", "num_trades",
    "winning_trades", "losing_trades", "breakeven_trades", "win_rate_pct", "profit_factor", "expectancy",
    "expectancy_pct", "avg_win", "avg_loss", "best_trade_pct", "worst_trade_pct", "exposure_pct", "fees_paid",
    "start_cash", "final_equity", "days", "annualization_days",
)  # fmt: skip
LOWER_IS_BETTER = frozenset({"fees_paid", "max_drawdown_duration_days"})

STAGES = {
    "queued": 0,
    "loading candles": 10,
    "running strategy": 30,
    "storing results": 90,
    "done": 100,
}


class RunInputError(ValueError):
    """A run request that cannot start; the message says what to change."""


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class RunRequest:
    strategy_version_id: int
    venue: str
    symbol: str
    timeframe: str
    start_ms: int | None = None
    end_ms: int | None = None
    fee: Decimal = Decimal("0.001")
    slippage_bps: Decimal = Decimal("0")
    cash: Decimal = Decimal("10000")
    params: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list] | None = None
    grid_metric: str | None = None


@dataclass(frozen=True)
class Dataset:
    """Candles present in the table for one (venue, symbol, timeframe)."""

    venue: str
    symbol: str
    timeframe: str
    candles: int
    first_ms: int
    last_ms: int

    @property
    def key(self) -> str:
        return f"{self.venue}|{self.symbol}|{self.timeframe}"

    @property
    def label(self) -> str:
        first, last = (datetime.fromtimestamp(t / 1000, UTC).strftime("%Y-%m-%d") for t in (self.first_ms, self.last_ms))
        return f"{self.symbol} {self.timeframe} · {self.venue} ({first} → {last}, {self.candles:,} candles)"


def parse_params(text: str) -> dict[str, str]:
    """`fast=10, slow=30` (commas, semicolons or new lines between) -> {"fast": "10", "slow": "30"}."""
    params: dict[str, str] = {}
    for item in re.split(r"[,;\n]", text or ""):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or not value.strip():
            raise RunInputError(f"parameters: {item.strip()!r} is not NAME=VALUE")
        params[name] = value.strip()
    return params


_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^(?P<a>{_NUMBER})\s*\.\.\s*(?P<b>{_NUMBER})\s*(?:(?::|step)\s*(?P<step>{_NUMBER}))?$")


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RunInputError(f"grid: {what} {text!r} is not a number") from None
    if not value.is_finite() or abs(value) > Decimal(str(MAX_PARAM_MAGNITUDE)):
        raise RunInputError(f"grid: {what} {text!r} is out of range")
    return value


def _plain_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _grid_values(name: str, spec: str) -> list:
    match = _RANGE.match(spec)
    if match is None:
        values = [v.strip() for v in spec.split(",") if v.strip()]
        if ".." in spec:
            raise RunInputError(f"grid: {name} = {spec!r} is not START..END[:STEP] nor a list V1, V2, ...")
        if not values:
            raise RunInputError(f"grid: no values for {name!r}")
        if len(values) > MAX_GRID_COMBINATIONS:
            raise RunInputError(f"grid: {len(values)} values for {name!r}; at most {MAX_GRID_COMBINATIONS} combinations in all")
        return values
    low, high = _decimal(match["a"], "start"), _decimal(match["b"], "end")
    step = _decimal(match["step"], "step") if match["step"] else Decimal(1)
    if step <= 0:
        raise RunInputError(f"grid: the step of {name!r} must be positive")
    if low > high:
        raise RunInputError(f"grid: {name!r} goes from {low} to {high}; the start must not exceed the end")
    count = int((high - low) / step) + 1
    if count > MAX_GRID_COMBINATIONS:
        raise RunInputError(
            f"grid: {name!r} alone has {count:,} values; at most {MAX_GRID_COMBINATIONS} combinations in all "
            "(use a larger step)")
    return [_plain_number(low + k * step) for k in range(count)]


def parse_grid(text: str) -> dict[str, list]:
    """One parameter per line: `fast = 5..20` (step 1), `fast = 5..20:5` / `5..20 step 5`, or `fast = 5, 8, 13`.
    Refuses more than MAX_GRID_COMBINATIONS combinations before building any of them."""
    grid: dict[str, list] = {}
    for line in re.split(r"[;\n]", text or ""):
        if not line.strip():
            continue
        name, sep, spec = line.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or not spec.strip():
            raise RunInputError(f"grid: {line.strip()!r} is not NAME = START..END[:STEP] or NAME = V1, V2, ...")
        if name in grid:
            raise RunInputError(f"grid: {name!r} appears twice")
        grid[name] = _grid_values(name, spec.strip())
    combos = math.prod(len(v) for v in grid.values()) if grid else 0
    if combos > MAX_GRID_COMBINATIONS:
        sizes = " × ".join(str(len(v)) for v in grid.values())
        raise RunInputError(f"grid: {sizes} = {combos:,} combinations; at most {MAX_GRID_COMBINATIONS} (use larger steps)")
    return grid


def grid_combinations(grid: dict[str, list]) -> list[dict]:
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in product(*(grid[n] for n in names))]


def default_params(code: str) -> dict | None:
    """The `params = {...}` literal of the strategy class, read without running the code (None: not found)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            targets = statement.targets if isinstance(statement, ast.Assign) else (
                [statement.target] if isinstance(statement, ast.AnnAssign) and statement.value else [])
            if any(isinstance(t, ast.Name) and t.id == "params" for t in targets):
                try:
                    value = ast.literal_eval(statement.value)
                except ValueError:
                    return None
                return value if isinstance(value, dict) else None
    return None


def _checked_params(defaults: dict | None, overrides: dict, where: str) -> dict:
    """Names and types checked against the strategy's defaults (when readable), values kept as typed."""
    if defaults is None:
        return dict(overrides)
    holder = type("Declared", (), {"params": defaults})
    try:
        resolved = resolve_params(holder, overrides)
    except ParamError as exc:
        raise RunInputError(f"{where}: {exc.message}") from None
    for name in overrides:
        value = resolved[name]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > MAX_PARAM_MAGNITUDE:
            raise RunInputError(f"{where}: {name} = {value!r} is absurdly large")
    return {name: resolved[name] for name in overrides}


# --------------------------------------------------------------------------- candles


def available_datasets(session: Session) -> list[Dataset]:
    stmt = (
        select(Candle.venue, Candle.symbol, Candle.timeframe, func.count(), func.min(Candle.open_time),
               func.max(Candle.open_time))
        .group_by(Candle.venue, Candle.symbol, Candle.timeframe)
        .order_by(Candle.symbol, Candle.timeframe, Candle.venue)
    )
    return [Dataset(*row) for row in session.execute(stmt).all()]


def _range_filter(stmt, venue: str, symbol: str, timeframe: str, start_ms: int | None, end_ms: int | None):
    stmt = stmt.where(Candle.venue == venue, Candle.symbol == symbol, Candle.timeframe == timeframe)
    if start_ms is not None:
        stmt = stmt.where(Candle.open_time >= start_ms)
    if end_ms is not None:
        stmt = stmt.where(Candle.open_time <= end_ms)
    return stmt


def count_candles(session: Session, venue: str, symbol: str, timeframe: str, start_ms=None, end_ms=None) -> int:
    stmt = _range_filter(select(func.count()).select_from(Candle), venue, symbol, timeframe, start_ms, end_ms)
    return int(session.execute(stmt).scalar_one())


def load_candles(session: Session, venue: str, symbol: str, timeframe: str, start_ms=None, end_ms=None) -> dict:
    """Column lists (floats; prices are Numeric in the table) in open-time order, as the sandbox takes them."""
    columns = [Candle.open_time] + [cast(getattr(Candle, c), Float) for c in CANDLE_COLUMNS[1:]]
    stmt = _range_filter(select(*columns), venue, symbol, timeframe, start_ms, end_ms).order_by(Candle.open_time)
    rows = session.execute(stmt).all()
    if not rows:
        return {c: [] for c in CANDLE_COLUMNS}
    return {name: list(values) for name, values in zip(CANDLE_COLUMNS, zip(*rows, strict=True), strict=True)}


def _describe_range(start_ms: int | None, end_ms: int | None) -> str:
    return f"between {format_candle_time(start_ms) or 'the start'} and {format_candle_time(end_ms) or 'the end'}"


# --------------------------------------------------------------------------- create / enqueue


def owned_version(session: Session, user_id: int, version_id: int) -> StrategyVersion | None:
    stmt = (select(StrategyVersion).join(Strategy)
            .where(StrategyVersion.id == version_id, Strategy.user_id == user_id))
    return session.execute(stmt).scalar_one_or_none()


def strategy_versions(session: Session, user_id: int) -> list[StrategyVersion]:
    """The user's valid versions, newest strategy first, newest version first."""
    stmt = (select(StrategyVersion).join(Strategy)
            .where(Strategy.user_id == user_id, StrategyVersion.valid.is_(True))
            .order_by(Strategy.updated_at.desc(), Strategy.id, StrategyVersion.number.desc()))
    return list(session.execute(stmt).scalars())


def check_settings(request: RunRequest) -> BacktestSettings:
    try:
        return BacktestSettings(
            fee=float(request.fee), slippage_bps=float(request.slippage_bps), cash=float(request.cash),
            start_ms=request.start_ms, end_ms=request.end_ms,
        ).validated()
    except BacktestInputError as exc:
        raise RunInputError(str(exc)) from None


def create_run(session: Session, user_id: int, request: RunRequest) -> BacktestRun:
    """Validate everything that can be checked without running the strategy, then record a queued run."""
    version = owned_version(session, user_id, request.strategy_version_id)
    if version is None:
        raise RunInputError("choose one of your strategies")
    if not version.valid:
        raise RunInputError(f"version {version.number} of this strategy has errors; fix it in the editor first")
    check_settings(request)
    defaults = default_params(version.code)
    params = _checked_params(defaults, {**(version.params or {}), **request.params}, "parameters")
    grid = request.grid or None
    if grid:
        grid = {name: list(_checked_params(defaults, {name: v}, "grid")[name] for v in values)
                for name, values in grid.items()}
        if request.grid_metric not in GRID_METRICS:
            raise RunInputError(f"grid: rank by one of {', '.join(GRID_METRICS)}")
    available = count_candles(session, request.venue, request.symbol, request.timeframe)
    if available == 0:
        raise RunInputError(f"no {request.symbol} {request.timeframe} candles from {request.venue} in the database")
    found = count_candles(session, request.venue, request.symbol, request.timeframe, request.start_ms, request.end_ms)
    if found == 0:
        raise RunInputError(f"no {request.symbol} {request.timeframe} candles {_describe_range(request.start_ms, request.end_ms)}")
    if found > MAX_RUN_CANDLES:
        raise RunInputError(f"{found:,} candles in that range; at most {MAX_RUN_CANDLES:,} per run (narrow the dates)")
    run = BacktestRun(
        user_id=user_id, strategy_version_id=version.id, kind="grid" if grid else "single", params=params,
        grid=grid, grid_metric=request.grid_metric if grid else None, venue=request.venue,
        symbol=request.symbol, timeframe=request.timeframe, start_ms=request.start_ms, end_ms=request.end_ms,
        fee=request.fee, slippage_bps=request.slippage_bps, cash=request.cash, status="queued", stage="queued",
        progress=0, num_candles=found,
    )
    session.add(run)
    session.flush()
    logger.info("backtest.created", extra={"run_id": run.id, "user_id": user_id, "kind": run.kind,
                                           "candles": found})
    return run


def enqueue_run(celery_app, run_id: int) -> str | None:
    """Hand the run to the `backtests` queue; None when the broker is unreachable (the run is marked failed)."""
    try:
        result = tasks.send_run_backtest(run_id, app=celery_app)
    except Exception as exc:  # noqa: BLE001 - kombu raises many transport errors; all mean "not queued"
        logger.warning("backtest.enqueue_failed", extra={"run_id": run_id, "error": str(exc)[:200]})
        fail_run(run_id, {"type": "QueueUnavailable", "message": "the task queue could not be reached; run it again"})
        return None
    with session_scope() as session:
        run = session.get(BacktestRun, run_id)
        if run is not None:
            run.task_id = result.id
    return result.id


# --------------------------------------------------------------------------- execute (worker side)


def report_progress(run_id: int, user_id: int, stage: str, percent: int | None = None, status: str = "running") -> None:
    """Store the stage in the run and publish it (best effort: Redis down does not stop the run)."""
    percent = STAGES.get(stage, 0) if percent is None else percent
    with session_scope() as session:
        run = session.get(BacktestRun, run_id)
        if run is None:
            return
        run.stage, run.progress, run.status = stage, percent, status
    message = json.dumps({"run_id": run_id, "status": status, "stage": stage, "progress": percent})
    try:
        redis = get_redis()
        redis.set(backtest_run_progress(run_id), message, ex=3600)
        redis.publish(backtest_progress(user_id), message)
    except Exception as exc:  # noqa: BLE001 - progress display only
        logger.warning("backtest.progress_not_published", extra={"run_id": run_id, "error": str(exc)[:200]})


def normalize_error(error: dict | None) -> dict:
    """Engine errors ({kind, method, candle_time, line, message, text}) and sandbox errors ({type, message,
    line, candle_time}) as one shape."""
    error = dict(error or {})
    message = str(error.get("message") or "the backtest failed")
    return {
        "type": str(error.get("type") or error.get("kind") or "Error"),
        "message": message,
        "method": error.get("method"),
        "line": error.get("line") if isinstance(error.get("line"), int) else None,
        "candle_time": error.get("candle_time"),
        "text": str(error.get("text") or message),
    }


def fail_run(run_id: int, error: dict) -> None:
    error = normalize_error(error)
    with session_scope() as session:
        run = session.get(BacktestRun, run_id)
        if run is None:
            return
        run.status, run.stage, run.error, run.finished_at = "failed", "failed", error, utcnow()
        user_id = run.user_id
    logger.info("backtest.failed", extra={"run_id": run_id, "error_type": error["type"], "line": error["line"],
                                          "candle_time": error["candle_time"]})
    report_progress(run_id, user_id, "failed", 100, status="failed")


@dataclass(frozen=True)
class _Job:
    """What the worker needs from the run row, read once so no session stays open while the strategy runs."""

    run_id: int
    user_id: int
    kind: str
    code: str
    params: dict
    grid: dict | None
    venue: str
    symbol: str
    timeframe: str
    start_ms: int | None
    end_ms: int | None
    settings: dict


def _claim(run_id: int) -> _Job | None:
    with session_scope() as session:
        run = session.get(BacktestRun, run_id, with_for_update=True)
        if run is None or run.finished:
            return None
        if run.status == "running":
            logger.info("backtest.restarted", extra={"run_id": run_id})  # a worker died mid-run
        run.status, run.started_at = "running", utcnow()
        settings = {"fee": float(run.fee), "slippage_bps": float(run.slippage_bps), "cash": float(run.cash),
                    "start_ms": run.start_ms, "end_ms": run.end_ms}
        return _Job(run.id, run.user_id, run.kind, run.strategy_version.code, dict(run.params or {}),
                    run.grid, run.venue, run.symbol, run.timeframe, run.start_ms, run.end_ms, settings)


def execute_run(run_id: int) -> str:
    """Run a queued run to the end; returns its final status ("missing" if no such run)."""
    from core.strategies.sandbox import SandboxError

    job = _claim(run_id)
    if job is None:
        with session_scope() as session:
            run = session.get(BacktestRun, run_id)
            return run.status if run else "missing"
    report_progress(run_id, job.user_id, "loading candles")
    try:
        with session_scope() as session:
            candles = load_candles(session, job.venue, job.symbol, job.timeframe, job.start_ms, job.end_ms)
        if not candles["open_time"]:
            raise RunInputError(f"no candles {_describe_range(job.start_ms, job.end_ms)} (deleted since the run was created?)")
        payload = {"candles": candles, "params": job.params, **job.settings}
        report_progress(run_id, job.user_id, "running strategy")
        if job.kind == "grid":
            _run_grid(job, payload)
        else:
            _run_single(job, payload)
    except SandboxError as exc:
        fail_run(run_id, exc.error | {"text": str(exc)})
    except RunInputError as exc:
        fail_run(run_id, {"type": "input", "message": str(exc)})
    except Exception as exc:  # noqa: BLE001 - one broken run must not take the worker down
        logger.exception("backtest.crashed", extra={"run_id": run_id})
        fail_run(run_id, {"type": "InternalError", "message": f"the backtest crashed ({type(exc).__name__})"})
    with session_scope() as session:
        return session.get(BacktestRun, run_id).status


def _run_single(job: _Job, payload: dict) -> None:
    from core.strategies.sandbox import run_sandboxed

    result = run_sandboxed(job.code, SINGLE_JOB, payload, limits=backtest_limits())
    if result.get("status") != "ok":
        fail_run(job.run_id, result.get("error") or {})
        return
    report_progress(job.run_id, job.user_id, "storing results")
    with session_scope() as session:
        run = session.get(BacktestRun, job.run_id)
        run.metrics, run.notes = result.get("metrics"), result.get("notes")
        run.resolved_params = result.get("params")
        run.trades = result.get("trades") or []
        run.series = result.get("series")
        run.gaps = result.get("gaps") or []
        run.num_candles = result.get("num_candles")
        run.final_equity = _money(result.get("final_equity"))
        _finish(run)
    logger.info("backtest.done", extra={"run_id": job.run_id, "trades": len(result.get("trades") or [])})


def _money(value: Any) -> Decimal | None:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return Decimal(repr(float(value))).quantize(Decimal("0.00000001"))


def _finish(run: BacktestRun) -> None:
    run.status, run.stage, run.progress, run.finished_at = "done", "done", 100, utcnow()
    run.error = None
    try:
        get_redis().set(backtest_run_progress(run.id), json.dumps({"run_id": run.id, "status": "done", "stage": "done",
                                                          "progress": 100}), ex=3600)
        get_redis().publish(backtest_progress(run.user_id), json.dumps({"run_id": run.id, "status": "done"}))
    except Exception:  # noqa: BLE001 - progress display only
        logger.warning("backtest.progress_not_published", extra={"run_id": run.id})


def _chunks(items: list, count: int) -> Iterable[list]:
    size = max(1, math.ceil(len(items) / count))
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _run_grid(job: _Job, payload: dict) -> None:
    from core.strategies.sandbox import WarmSandbox

    combos = [{**job.params, **combo} for combo in grid_combinations(job.grid or {})]
    results: list[dict] = []
    span = STAGES["storing results"] - STAGES["running strategy"]
    # One sandbox for the whole grid: the strategy is loaded once, each chunk is one call.
    with WarmSandbox(job.code, limits=backtest_limits(), preload=(GRID_JOB,)) as sandbox:
        for chunk in _chunks(combos, GRID_PROGRESS_STEPS):
            answer = sandbox.call(GRID_JOB, {**payload, "params_list": chunk})
            results.extend(_grid_entry(r) for r in answer.get("results", []))
            percent = STAGES["running strategy"] + span * len(results) // len(combos)
            report_progress(job.run_id, job.user_id, f"running {len(results)}/{len(combos)}", percent)
    report_progress(job.run_id, job.user_id, "storing results")
    if all(r["status"] != "ok" for r in results):
        fail_run(job.run_id, results[0]["error"] if results else {"message": "empty grid"})
        _store_grid(job.run_id, results, finish=False)
        return
    _store_grid(job.run_id, results, finish=True)
    logger.info("backtest.grid_done", extra={"run_id": job.run_id, "combinations": len(results)})


def _grid_entry(result: dict) -> dict:
    return {
        "params": result.get("params") or {},
        "status": result.get("status"),
        "metrics": result.get("metrics"),
        "final_equity": result.get("final_equity"),
        "num_trades": result.get("trades") if isinstance(result.get("trades"), int) else None,
        "error": normalize_error(result["error"]) if result.get("status") != "ok" else None,
    }


def _store_grid(run_id: int, results: list[dict], finish: bool) -> None:
    with session_scope() as session:
        run = session.get(BacktestRun, run_id)
        run.grid_results = results
        best = best_grid_entry(run)
        if best is not None:
            run.metrics, run.resolved_params = best["metrics"], best["params"]
        if finish:
            _finish(run)


# --------------------------------------------------------------------------- reading results


_WITH_STRATEGY = selectinload(BacktestRun.strategy_version).selectinload(StrategyVersion.strategy)


def list_runs(session: Session, user_id: int, limit: int = 200) -> list[BacktestRun]:
    stmt = (select(BacktestRun).where(BacktestRun.user_id == user_id).options(_WITH_STRATEGY)
            .order_by(BacktestRun.created_at.desc(), BacktestRun.id.desc()).limit(limit))
    return list(session.execute(stmt).scalars())


def owned_runs(session: Session, user_id: int, run_ids: Iterable[int]) -> list[BacktestRun]:
    """Runs by id in the order asked; LookupError if any is not this user's (or does not exist)."""
    ids = list(dict.fromkeys(run_ids))
    found = {r.id: r for r in session.execute(
        select(BacktestRun).where(BacktestRun.id.in_(ids), BacktestRun.user_id == user_id)
        .options(_WITH_STRATEGY)).scalars()}
    if len(found) != len(ids):
        raise LookupError("no such backtest run")
    return [found[i] for i in ids]


def trades_csv(run: BacktestRun) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=TRADE_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(run.trades or [])
    return out.getvalue()


def _bar_buckets(times: np.ndarray, max_bars: int) -> np.ndarray:
    """Start index of each chart bar: candles merged k at a time when there are more than max_bars."""
    k = max(1, math.ceil(len(times) / max_bars))
    return np.arange(0, len(times), k)


def chart_data(session: Session, run: BacktestRun, max_bars: int = MAX_CHART_BARS) -> dict:
    """Candles (merged into at most max_bars bars), trade markers on them, equity and drawdown; times in s."""
    candles = load_candles(session, run.venue, run.symbol, run.timeframe, run.start_ms, run.end_ms)
    bars: list[dict] = []
    markers: list[dict] = []
    if candles["open_time"]:
        t = np.asarray(candles["open_time"], dtype="int64")
        starts = _bar_buckets(t, max_bars)
        ends = np.append(starts[1:], len(t)) - 1
        o, h, lo, c = (np.asarray(candles[k], dtype="float64") for k in ("open", "high", "low", "close"))
        highs, lows = np.maximum.reduceat(h, starts), np.minimum.reduceat(lo, starts)
        bar_times = t[starts] // 1000
        bars = [{"time": int(bt), "open": float(o[s]), "high": float(hi), "low": float(lw), "close": float(c[e])}
                for bt, s, e, hi, lw in zip(bar_times, starts, ends, highs, lows, strict=True)]
        markers = _trade_markers(run.trades or [], t[starts])
    series = run.series or {"time_ms": [], "equity": [], "drawdown": []}
    seconds = [int(x) // 1000 for x in series["time_ms"]]
    return {
        "candles": bars,
        "markers": markers,
        "equity": [{"time": s, "value": v} for s, v in zip(seconds, series["equity"], strict=True)],
        "drawdown": [{"time": s, "value": v * 100.0} for s, v in zip(seconds, series["drawdown"], strict=True)],
    }


EXIT_LABELS = {"stop_loss": "SL", "take_profit": "TP", "end_of_data": "end"}  # signal exits: a bare circle


def _trade_markers(trades: list[dict], bar_start_ms: np.ndarray) -> list[dict]:
    def bar_time(ms: int) -> int:
        i = max(0, int(np.searchsorted(bar_start_ms, ms, side="right")) - 1)
        return int(bar_start_ms[i]) // 1000

    markers = []
    for trade in trades:
        long = trade.get("side") == "long"
        markers.append({"time": bar_time(trade["entry_time_ms"]), "position": "belowBar" if long else "aboveBar",
                        "color": "#2fbf71" if long else "#f0506e", "shape": "arrowUp" if long else "arrowDown",
                        "text": "L" if long else "S"})
        if trade.get("exit_time_ms"):
            markers.append({"time": bar_time(trade["exit_time_ms"]), "position": "aboveBar" if long else "belowBar",
                            "color": "#e0a526", "shape": "circle", "text": EXIT_LABELS.get(trade.get("exit_reason"), "")})
    markers.sort(key=lambda m: m["time"])
    return markers


def ordered_metric_names(names: Iterable[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(METRIC_ORDER)}
    return sorted(set(names), key=lambda name: (rank.get(name, len(rank)), name))


def ordered_metrics(metrics: dict | None) -> list[tuple[str, Any]]:
    return [(name, metrics[name]) for name in ordered_metric_names(metrics or {})]


def compare_metric_rows(runs: list[BacktestRun]) -> list[tuple[str, list]]:
    """(metric, [value per run]) for every metric any of the runs has, in display order."""
    names = ordered_metric_names(name for run in runs for name in (run.metrics or {}))
    return [(name, [(run.metrics or {}).get(name) for run in runs]) for name in names]


def best_grid_entry(run: BacktestRun) -> dict | None:
    metric = run.grid_metric or "total_return_pct"
    scored = [r for r in run.grid_results or [] if r["status"] == "ok" and _finite((r["metrics"] or {}).get(metric))]
    if not scored:
        return None
    sign = -1 if metric in LOWER_IS_BETTER else 1
    return max(scored, key=lambda r: sign * r["metrics"][metric])


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Heatmap:
    """A table of one metric over the grid: rows are the first parameter, columns the second."""

    metric: str
    row_param: str
    col_param: str | None
    row_values: list
    col_values: list
    cells: list[list[dict]]  # {value, color, params, error}
    others: list[str]  # parameters beyond the first two (the best value over them is shown)


def grid_heatmap(run: BacktestRun, metric: str | None = None) -> Heatmap | None:
    metric = metric or run.grid_metric or "total_return_pct"
    grid = run.grid or {}
    if not grid or not run.grid_results:
        return None
    names = list(grid)
    row_param, col_param = names[0], (names[1] if len(names) > 1 else None)
    col_values = grid[col_param] if col_param else [None]
    sign = -1 if metric in LOWER_IS_BETTER else 1
    best: dict[tuple, dict] = {}
    for entry in run.grid_results:
        key = (_grid_key(entry["params"].get(row_param)), _grid_key(entry["params"].get(col_param)) if col_param else None)
        value = (entry.get("metrics") or {}).get(metric) if entry["status"] == "ok" else None
        current = best.get(key)
        if current is None or (_finite(value) and (not _finite(current["value"]) or sign * value > sign * current["value"])):
            best[key] = {"value": value if _finite(value) else None, "params": entry["params"], "error": entry.get("error")}
    values = [c["value"] for c in best.values() if c["value"] is not None]
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    cells = []
    for rv in grid[row_param]:
        row = []
        for cv in col_values:
            cell = dict(best.get((_grid_key(rv), _grid_key(cv) if col_param else None)) or {"value": None, "params": {}, "error": None})
            cell["color"] = _heat_color(cell["value"], low, high, sign)
            row.append(cell)
        cells.append(row)
    return Heatmap(metric, row_param, col_param, grid[row_param], col_values, cells, names[2:])


def _grid_key(value: Any) -> Any:
    # Coerced values (10 vs 10.0 vs "10") must land in the same cell.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def _heat_color(value: float | None, low: float, high: float, sign: int) -> str:
    if value is None:
        return "transparent"
    share = 0.5 if high == low else (value - low) / (high - low)
    if sign < 0:
        share = 1.0 - share
    hue = int(round(share * 130))  # red (bad) .. green (good)
    return f"hsl({hue} 55% 32%)"
