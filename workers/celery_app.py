"""The Celery application: `celery -A workers.celery_app worker|beat|flower`."""

from __future__ import annotations

import sys

from celery import Celery, signals

from core.heartbeat import start_heartbeat
from core.logs import setup_logging

app = Celery("aristobot")
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["workers"], related_name=None, force=True)

import workers.maintenance  # noqa: E402,F401  (registers tasks)

if "flower" in sys.argv:
    # Flower loads this module but fires no worker/beat signal: report its liveness from here.
    setup_logging("flower")
    start_heartbeat("flower")


@signals.setup_logging.connect
def _logging(**_kwargs) -> None:
    setup_logging("worker")


@signals.worker_ready.connect
def _worker_heartbeat(sender=None, **_kwargs) -> None:
    queues = sorted(sender.app.amqp.queues.consume_from) if sender else []
    # One heartbeat per node kind: "worker@host" -> worker, "backtester@host" -> backtester.
    name = sender.hostname.split("@")[0] if sender else "worker"
    start_heartbeat(name, lambda: {"queues": queues})


@signals.beat_init.connect
def _beat_heartbeat(**_kwargs) -> None:
    setup_logging("beat")
    start_heartbeat("beat")
