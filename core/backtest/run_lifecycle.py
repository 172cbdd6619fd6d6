"""Backtest runs started from the web: create (validated, nothing queued on bad input), execute in
the sandbox on a worker, store results.

Lifecycle: queued -> running -> done | failed. `execute_run` is what the Celery task calls; it is
safe to call twice (a finished run is left alone, a run left `running` by a killed worker restarts).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from core import tasks
from core.backtest.budget import backtest_limits
from core.backtest.grid import run_grid
from core.backtest.run_params import (
    GRID_METRICS,
    RunInputError,
    RunRequest,
    check_settings,
    checked_params,
    count_candles,
    default_params,
    describe_range,
    grid_combinations,
    load_candles,
    owned_version,
)
from core.backtest.run_results import best_grid_entry
from core.infra.bus import backtest_progress, backtest_run_progress, get_redis
from core.infra.db import session_scope, utcnow
from core.models import BacktestRun

logger = logging.getLogger(__name__)

SINGLE_JOB = "core.backtest.run_jobs:backtest_with_series"

MAX_RUN_CANDLES = 600_000  # ~40 MB of JSON to the sandbox; beyond, narrow the date range


STAGES = {
    "queued": 0,
    "loading candles": 10,
    "running strategy": 30,
    "storing results": 90,
    "done": 100,
}


def create_run(session: Session, user_id: int, request: RunRequest) -> BacktestRun:
    """Validate everything that can be checked without running the strategy, then record a queued run."""
    version = owned_version(session, user_id, request.strategy_version_id)
    if version is None:
        raise RunInputError("choose one of your strategies")
    if not version.valid:
        raise RunInputError(f"version {version.number} of this strategy has errors; fix it in the editor first")
    check_settings(request)
    defaults = default_params(version.code)
    params = checked_params(defaults, {**(version.params or {}), **request.params}, "parameters")
    grid = request.grid or None
    if grid:
        grid = {
            name: list(checked_params(defaults, {name: v}, "grid")[name] for v in values)
            for name, values in grid.items()
        }
        if request.grid_metric not in GRID_METRICS:
            raise RunInputError(f"grid: rank by one of {', '.join(GRID_METRICS)}")
    available = count_candles(session, request.venue, request.symbol, request.timeframe)
    if available == 0:
        raise RunInputError(f"no {request.symbol} {request.timeframe} candles from {request.venue} in the database")
    found = count_candles(session, request.venue, request.symbol, request.timeframe, request.start_ms, request.end_ms)
    if found == 0:
        raise RunInputError(
            f"no {request.symbol} {request.timeframe} candles {describe_range(request.start_ms, request.end_ms)}"
        )
    if found > MAX_RUN_CANDLES:
        raise RunInputError(f"{found:,} candles in that range; at most {MAX_RUN_CANDLES:,} per run (narrow the dates)")
    run = BacktestRun(
        user_id=user_id,
        strategy_version_id=version.id,
        kind="grid" if grid else "single",
        params=params,
        grid=grid,
        grid_metric=request.grid_metric if grid else None,
        venue=request.venue,
        symbol=request.symbol,
        timeframe=request.timeframe,
        start_ms=request.start_ms,
        end_ms=request.end_ms,
        fee=request.fee,
        slippage_bps=request.slippage_bps,
        cash=request.cash,
        status="queued",
        stage="queued",
        progress=0,
        num_candles=found,
    )
    session.add(run)
    session.flush()
    logger.info("backtest.created", extra={"run_id": run.id, "user_id": user_id, "kind": run.kind, "candles": found})
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
    logger.info(
        "backtest.failed",
        extra={
            "run_id": run_id,
            "error_type": error["type"],
            "line": error["line"],
            "candle_time": error["candle_time"],
        },
    )
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
        settings = {
            "fee": float(run.fee),
            "slippage_bps": float(run.slippage_bps),
            "cash": float(run.cash),
            "start_ms": run.start_ms,
            "end_ms": run.end_ms,
        }
        return _Job(
            run.id,
            run.user_id,
            run.kind,
            run.strategy_version.code,
            dict(run.params or {}),
            run.grid,
            run.venue,
            run.symbol,
            run.timeframe,
            run.start_ms,
            run.end_ms,
            settings,
        )


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
            raise RunInputError(
                f"no candles {describe_range(job.start_ms, job.end_ms)} (deleted since the run was created?)"
            )
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
        return session.get_one(BacktestRun, run_id).status


def _run_single(job: _Job, payload: dict) -> None:
    from core.strategies.sandbox import run_sandboxed

    result = run_sandboxed(job.code, SINGLE_JOB, payload, limits=backtest_limits())
    if result.get("status") != "ok":
        fail_run(job.run_id, result.get("error") or {})
        return
    report_progress(job.run_id, job.user_id, "storing results")
    with session_scope() as session:
        run = session.get_one(BacktestRun, job.run_id)
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
        get_redis().set(
            backtest_run_progress(run.id),
            json.dumps({"run_id": run.id, "status": "done", "stage": "done", "progress": 100}),
            ex=3600,
        )
        get_redis().publish(backtest_progress(run.user_id), json.dumps({"run_id": run.id, "status": "done"}))
    except Exception:  # noqa: BLE001 - progress display only
        logger.warning("backtest.progress_not_published", extra={"run_id": run.id})


def _run_grid(job: _Job, payload: dict) -> None:
    combos = [{**job.params, **combo} for combo in grid_combinations(job.grid or {})]
    span = STAGES["storing results"] - STAGES["running strategy"]

    def progress(done: int, total: int) -> None:
        percent = STAGES["running strategy"] + span * done // total
        report_progress(job.run_id, job.user_id, f"running {done}/{total}", percent)

    # One warm sandbox per core, the strategy loaded once in each (core/backtest/grid.py).
    results = [_grid_entry(r) for r in run_grid(job.code, payload, combos, on_progress=progress).results]
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
        run = session.get_one(BacktestRun, run_id)
        run.grid_results = results
        best = best_grid_entry(run)
        if best is not None:
            run.metrics, run.resolved_params = best["metrics"], best["params"]
        if finish:
            _finish(run)
