"""Housekeeping tasks on the `maintenance` queue."""

from __future__ import annotations

import json
import time

from celery import shared_task

from core.bus import PREFIX, get_redis
from core.health import queue_depths


@shared_task(name="workers.maintenance.record_queue_depths")
def record_queue_depths() -> dict:
    depths = queue_depths()
    get_redis().set(f"{PREFIX}:queue_depths", json.dumps({"ts": time.time(), "depths": depths}), ex=120)
    return depths


@shared_task(name="workers.maintenance.ping")
def ping(value: str = "pong") -> str:
    return value
