"""Housekeeping tasks on the `maintenance` queue."""

from __future__ import annotations

import json
import time

from celery import shared_task

from core import tasks
from core.health import queue_depths
from core.infra.bus import QUEUE_DEPTHS, get_redis


@shared_task(name=tasks.RECORD_QUEUE_DEPTHS)
def record_queue_depths() -> dict:
    depths = queue_depths()
    get_redis().set(QUEUE_DEPTHS, json.dumps({"ts": time.time(), "depths": depths}), ex=120)
    return depths


@shared_task(name=tasks.PING)
def ping(value: str = "pong") -> str:
    return value
