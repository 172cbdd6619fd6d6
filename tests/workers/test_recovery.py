"""A worker killed with -9 leaves its orders tasks unacknowledged; the next worker to start puts them back at
once (not after the hour of the visibility timeout), and leaves alone what a live worker took after it."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

from kombu import Exchange, Queue

from tests.conftest import ROOT, process_env
from workers.celery_app import app
from workers.recovery import restore_orphans

TAKE_AND_DIE = """
import os, sys
from celery import Celery
app = Celery(set_as_current=False)
app.config_from_object("celeryconfig")
with app.connection_for_write() as connection:
    print(all(connection.default_channel.basic_get(name, no_ack=False) for name in sys.argv[1:]), flush=True)
    os._exit(0)  # as kill -9: no acknowledgement, no orderly close that would give the messages back
"""


def _publish(queue: Queue, body: str) -> None:
    with app.connection_for_write() as connection, connection.Producer() as producer:
        producer.publish(body, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue])


def _taken_by_a_killed_worker(*queues: Queue) -> None:
    result = subprocess.run(
        [sys.executable, "-c", TAKE_AND_DIE, *(queue.name for queue in queues)],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "True", result.stderr


def test_orphaned_messages_go_back_to_their_queue(infra):
    name = f"recovery-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
    other = Queue(f"{name}-other", Exchange(f"{name}-other", type="direct"), routing_key=f"{name}-other")
    _publish(queue, "orphan")
    _publish(other, "not ours")
    _taken_by_a_killed_worker(queue, other)
    restarted_at = time.time()
    _publish(queue, "taken by the live worker")
    with app.connection_for_write() as live:  # delivered after the restart, to a live worker: left alone
        assert live.default_channel.basic_get(name, no_ack=False).payload == "taken by the live worker"
        assert restore_orphans(app, frozenset({name}), restarted_at) == 1
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            message = channel.basic_get(name, no_ack=True)
            assert message is not None and message.payload == "orphan"
            assert channel.basic_get(name, no_ack=True) is None
            assert channel.basic_get(other.name, no_ack=True) is None  # another queue's stays unacked
        assert restore_orphans(app, frozenset({name}), restarted_at) == 0
