"""Housekeeping tasks on the `maintenance` queue."""

from __future__ import annotations

import json
import logging
import time

from celery import shared_task

from core import tasks
from core.health import queue_depths
from core.infra.bus import QUEUE_DEPTHS, get_redis
from core.infra.db import new_session
from core.ledger.check import check

log = logging.getLogger(__name__)


@shared_task(name=tasks.RECORD_QUEUE_DEPTHS)
def record_queue_depths() -> dict:
    depths = queue_depths()
    get_redis().set(QUEUE_DEPTHS, json.dumps({"ts": time.time(), "depths": depths}), ex=120)
    return depths


@shared_task(name=tasks.PING)
def ping(value: str = "pong") -> str:
    return value


@shared_task(name=tasks.LEDGER_CHECK)
def ledger_check() -> dict:
    """Daily: every position and P&L recomputed from the fills (`aristobot ledger check`)."""
    with new_session() as session:
        result = check(session).as_dict()
    level = logging.ERROR if result["disagreements"] else logging.INFO
    log.log(level, "ledger_check", extra={k: result[k] for k in ("positions_checked", "disagreements")})
    return result
