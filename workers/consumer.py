"""The workers' broker consumer: back on Redis within a second or two of its restart, without exiting.

- Celery's consumer reconnects with kombu's defaults, 2 s then 4, 6, 8... up to 30 s between attempts, so a
  worker whose Redis came back after 10 s slept up to 10 s more before taking tasks again. Redis here is local
  and restarted by supervisord in seconds: retry every half second at first, every RECONNECT["interval_max"]
  seconds at most.
- When the connection is lost while tasks are unacknowledged (acks_late: every busy `orders` worker), Celery
  collects it, which unlinks the transport from its settings; kombu's close then tries to put the tasks back
  through it, and a running task's ack goes through it when the task ends: both raised AttributeError, which
  Celery treats as unrecoverable, so the worker exited (status 1) on a Redis kill and supervisord had to
  start it again. Here the close error is caught and the transport linked again (a late ack then reaches
  Redis, or fails as a connection error that kombu logs); once connected again, the worker puts back the
  unacknowledged messages of its idempotent queues delivered before the loss (workers/recovery.py), as
  kombu's close would have.

Used through `worker_consumer` in celeryconfig.py."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

from celery.worker.consumer import Consumer as CeleryConsumer

from workers.recovery import IDEMPOTENT_QUEUES, restore_orphans

log = logging.getLogger(__name__)
RECONNECT = {"interval_start": 0.5, "interval_step": 0.5, "interval_max": 2.0}


class Consumer(CeleryConsumer):
    lost_at: float | None = None  # when a connection was lost with unacknowledged messages not put back

    def ensure_connected(self, conn):
        conn.ensure_connection = partial(conn.ensure_connection, **RECONNECT)
        return super().ensure_connected(conn)

    def on_connection_error_after_connected(self, exc):
        lost = self.connection
        transport = lost.transport if lost is not None else None
        if lost is not None:
            lost.close = partial(self._close_lost, lost.close)
        super().on_connection_error_after_connected(exc)
        if transport is not None and transport.client is None:
            # Celery's collect() cut the transport from its settings; the tasks still running ack through it
            # when they finish. Linked again, such an ack reaches Redis once it is back (or fails as a
            # connection error, which kombu logs) instead of raising AttributeError in the event loop.
            transport.client = lost

    def _close_lost(self, close: Callable[[], None]) -> None:
        try:
            close()
        except AttributeError as exc:  # kombu: restoring the unacked through the connection it dropped
            self.lost_at = time.time()
            log.warning("unacked_restore_deferred", extra={"error": repr(exc)[:200]})

    def connect(self):
        conn = super().connect()
        queues = IDEMPOTENT_QUEUES & set(self.app.amqp.queues.consume_from)
        if self.lost_at is not None and queues:
            restore_orphans(self.app, frozenset(queues), self.lost_at)
        self.lost_at = None
        return conn
