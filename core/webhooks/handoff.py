"""From the web to the `orders` workers: accepted alert ids on a Redis list, drained by wake-up tasks.

One Celery message per alert cost the web a fifth of its CPU and the worker a task's bookkeeping per
alert; a list push costs one Redis round trip. A `drain_alerts` task is sent only when none is already
waiting (the wake flag); a task clears the flag before it pops, so an alert pushed meanwhile wakes
another worker, which then drains alongside. Losing a push or a popped id loses nothing: the alert
is stored and the recovery sweep processes what stays unprocessed.

A drain task takes alerts for at most DRAIN_SLICE_S, then hands what is left to a new task: a worker's
warm shutdown waits for its running tasks, so a drain that ran as long as a backlog lasts would keep the
worker from stopping until supervisord SIGKILLed it, in the middle of an order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from core import tasks
from core.infra.bus import WEBHOOKS_PENDING, WEBHOOKS_WAKE

if TYPE_CHECKING:
    import redis
    from celery import Celery

log = logging.getLogger(__name__)

WAKE_TTL_MS = 5000  # a wake-up task lost in transit stops holding back new ones after this
POP_BATCH = 8  # several workers still share a burst; one transaction records up to this many
DRAIN_SLICE_S = 5.0  # well within a worker's stop time (core.supervision.config.STOP_WAIT_S)


def hand_off(alert_id: int, redis_client: redis.Redis, celery_app: Celery) -> bool:
    """Queue the alert for processing; False when Redis or the broker failed (the sweep will)."""
    try:
        pipe = redis_client.pipeline(transaction=False)
        pipe.rpush(WEBHOOKS_PENDING, alert_id)
        pipe.set(WEBHOOKS_WAKE, "1", nx=True, px=WAKE_TTL_MS)
        _, woken = pipe.execute()
        if woken:
            _wake(redis_client, celery_app)
        return True
    except Exception as exc:  # noqa: BLE001 - redis/kombu transport errors: the sweep processes it later
        log.warning("webhook_process_deferred", extra={"alert_id": alert_id, "error": str(exc)[:200]})
        return False


def _wake(redis_client: redis.Redis, celery_app: Celery) -> None:
    try:
        tasks.send_drain_alerts(app=celery_app)
    except Exception:
        redis_client.delete(WEBHOOKS_WAKE)  # the next alert tries to wake a worker again
        raise


def drain(
    redis_client: redis.Redis,
    process: Callable[[list[int]], object],
    celery_app: Celery,
    slice_s: float = DRAIN_SLICE_S,
) -> int:
    """Process queued alerts, a batch at a time (`process` records a batch in one transaction), until the
    list is empty or `slice_s` has passed (then a new task takes the rest); returns how many this call took."""
    redis_client.delete(WEBHOOKS_WAKE)  # from now on a new alert wakes another worker
    deadline = time.monotonic() + slice_s
    taken = 0
    # get_redis() decodes responses: alert ids come back as text.
    while batch := cast("list[str] | None", redis_client.lpop(WEBHOOKS_PENDING, POP_BATCH)):
        try:
            process([int(alert_id) for alert_id in batch])
        except Exception:
            redis_client.lpush(WEBHOOKS_PENDING, *reversed(batch))  # back in front, in order
            raise
        taken += len(batch)
        if time.monotonic() >= deadline:
            _hand_over(redis_client, celery_app)
            break
    return taken


def _hand_over(redis_client: redis.Redis, celery_app: Celery) -> None:
    """The slice is spent: wake a task for what is left (unless an arrival already did)."""
    if redis_client.llen(WEBHOOKS_PENDING) and redis_client.set(WEBHOOKS_WAKE, "1", nx=True, px=WAKE_TTL_MS):
        _wake(redis_client, celery_app)
