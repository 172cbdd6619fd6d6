"""Market-data jobs started from the web: sent to Celery, owned by a user, progress read back.

Progress lives in the Celery result backend (state PROGRESS with {done, total, what}); which jobs a
user may see lives in a short Redis list per user, so another user's job id answers 404.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from celery.result import AsyncResult

from core import tasks
from core.infra.bus import get_redis, marketdata_jobs, task_sender
from core.infra.config import get_settings

JOBS_KEPT = 20
JOBS_TTL_S = 7 * 24 * 3600


class JobNotQueued(RuntimeError):
    """The task queue could not be reached."""


def upload_dir() -> Path:
    """Where uploaded files wait for the worker (web and workers share the var dir on one machine)."""
    path = get_settings().var_dir / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_upload_path() -> Path:
    return upload_dir() / f"{uuid.uuid4().hex}.csv"


def _start(user_id: int, send: Callable[[], AsyncResult], label: str, client: redis.Redis | None) -> str:
    client = client or get_redis()
    try:
        result = send()
    except Exception as exc:  # noqa: BLE001 - kombu transport errors all mean "not queued"
        raise JobNotQueued("the task queue could not be reached; try again in a moment") from exc
    entry = json.dumps({"id": result.id, "label": label, "created": time.time()})
    pipe = client.pipeline()
    pipe.lpush(marketdata_jobs(user_id), entry)
    pipe.ltrim(marketdata_jobs(user_id), 0, JOBS_KEPT - 1)
    pipe.expire(marketdata_jobs(user_id), JOBS_TTL_S)
    pipe.execute()
    return result.id


def start_import(
    user_id: int,
    path: Path,
    *,
    venue: str,
    symbol: str,
    timeframe: str,
    filename: str,
    client: redis.Redis | None = None,
) -> str:
    return _start(
        user_id,
        lambda: tasks.send_import_candles(str(path), venue, symbol, timeframe, filename),
        f"import {filename} → {venue} {symbol} {timeframe}",
        client,
    )


def start_download(
    user_id: int,
    *,
    venue: str,
    symbol: str,
    timeframe: str,
    start_ms: int,
    end_ms: int,
    client: redis.Redis | None = None,
) -> str:
    return _start(
        user_id,
        lambda: tasks.send_download_candles(venue, symbol, timeframe, start_ms, end_ms),
        f"download {venue} {symbol} {timeframe}",
        client,
    )


def user_jobs(user_id: int, client: redis.Redis | None = None) -> list[dict]:
    client = client or get_redis()
    return [json.loads(raw) for raw in client.lrange(marketdata_jobs(user_id), 0, -1)]


def job_status(user_id: int, job_id: str, client: redis.Redis | None = None) -> dict | None:
    """None when the job is not this user's."""
    job = next((j for j in user_jobs(user_id, client) if j["id"] == job_id), None)
    if job is None:
        return None
    result: AsyncResult[Any] = AsyncResult(job_id, app=task_sender())
    state, info = result.state, result.info
    status = {**job, "state": state, "done": 0, "total": 0, "report": None, "error": None, "finished": False}
    if state == "PROGRESS" and isinstance(info, dict):
        status.update(done=info.get("done", 0), total=info.get("total", 0))
    elif state == "SUCCESS" and isinstance(info, dict):
        status.update(finished=True, report=info.get("report"), error=info.get("error"))
        if status["report"]:
            status["done"] = status["total"] = status["report"]["rows"]
    elif state in ("FAILURE", "REVOKED"):
        status.update(finished=True, error="the job failed unexpectedly; see the worker log")
    status["percent"] = (
        int(100 * status["done"] / status["total"]) if status["total"] else (100 if status["finished"] else 0)
    )
    return status
