"""The Celery application: `celery -A workers.celery_app worker|beat|flower`."""

from __future__ import annotations

import importlib
import sys

from celery import Celery, signals

from core.heartbeat import start_heartbeat
from core.logs import setup_logging

app = Celery("aristobot")
app.config_from_object("celeryconfig")

# Task modules, one per area; each registers its tasks (and periodic schedule, via
# `app.on_after_configure`) on import. Areas land one by one; a missing module is skipped.
TASK_MODULES = ("maintenance", "orders", "reconciliation", "feeds_tasks", "webhooks", "bots", "backtests", "stop",
                "notifications")
for _area in TASK_MODULES:
    try:
        importlib.import_module(f"workers.{_area}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"workers.{_area}":
            raise

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
