"""Tasks of a killed worker come back at once, not an hour later.

A worker killed with -9 (or by the OOM killer) leaves the tasks it had taken unacknowledged in Redis (acks_late).
Kombu hands such a task back only after the broker's visibility timeout, an hour (celeryconfig.py), so that
a long backtest is never redelivered while it still runs. The `orders` queue's tasks are short and idempotent
by order id, and the `bots` queue's ticks by (bot, candle) (core/bots/runner.py: a redelivered tick finds its
tick row and places nothing; an order recorded before the kill is placed by the recovery sweep, never twice): when a
worker that consumes such a queue starts, it puts back at once every such message delivered before it started
(to its killed predecessor: a running worker's messages are younger than the restart). A tick put back after
its candle's useful life is recorded as skipped, with the reason, rather than trading on an old close."""

from __future__ import annotations

import json
import logging

from celery import Celery

log = logging.getLogger(__name__)
IDEMPOTENT_QUEUES = frozenset({"orders", "bots"})


def restore_orphans(app: Celery, queues: frozenset[str], delivered_before: float) -> int:
    """Put back into their queue the unacknowledged messages of `queues` delivered before that time."""
    restored = 0
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        client = channel.client
        for tag in client.zrangebyscore(channel.unacked_index_key, 0, delivered_before):
            raw = client.hget(channel.unacked_key, tag)
            if raw is None:
                continue  # acknowledged meanwhile
            _message, _exchange, routing_key = json.loads(raw)
            if routing_key in queues:
                channel.qos.restore_by_tag(tag, leftmost=True)
                restored += 1
    if restored:
        log.warning("orphaned_tasks_restored", extra={"count": restored, "queues": sorted(queues)})
    return restored
