"""Names of everything that lives in Redis, in one place, so processes agree on them."""

from __future__ import annotations

import logging
import time
from functools import lru_cache

import redis

from core.config import get_settings

log = logging.getLogger(__name__)
PREFIX = "aristobot"
HEARTBEATS = f"{PREFIX}:heartbeats"               # hash: process name -> JSON {ts, pid, host, info}
EXPECTED_PROCESSES = f"{PREFIX}:expected_processes"  # set written by `aristobot run`
QUEUES = ("orders", "bots", "backtests", "maintenance")


def order_events_channel(user_id: int) -> str:
    return f"{PREFIX}:orders:{user_id}"


def notifications_channel(user_id: int) -> str:
    """Pub/sub: one JSON message per new notification of the user (and per read-state change)."""
    return f"{PREFIX}:notifications:{user_id}"


def notification_rate_key(user_id: int, minute: int) -> str:
    """Counter of the user's outbound notifications in one UTC minute (rate limit)."""
    return f"{PREFIX}:notifications:sent:{user_id}:{minute}"


def candle_stream(venue: str, symbol: str, timeframe: str) -> str:
    return f"{PREFIX}:candles:{venue}:{symbol}:{timeframe}"


@lru_cache(maxsize=1)
def task_sender():
    """A send-only Celery app configured like the workers: processes that enqueue tasks (web, CLI)
    use it without importing the `workers` package."""
    from celery import Celery

    app = Celery("aristobot", set_as_current=False)
    app.config_from_object("celeryconfig")
    return app


def wait_for_redis(timeout: float = 60.0) -> redis.Redis:
    """Block until Redis answers a PING (after a restart it says "loading the dataset" for a while)."""
    client = get_redis()
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return client
        except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise
            log.info("waiting_for_redis", extra={"reason": str(exc)[:200]})
            time.sleep(0.5)


@lru_cache(maxsize=4)
def get_redis(url: str | None = None) -> redis.Redis:
    return redis.Redis.from_url(url or get_settings().redis_url, decode_responses=True,
                                socket_connect_timeout=2, socket_timeout=5, health_check_interval=15)
