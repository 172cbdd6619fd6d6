"""The Celery application: `celery -A workers.celery_app worker|beat|flower`."""

from __future__ import annotations

import importlib
import sys
import time

from celery import Celery, signals

from core.infra.liveness import start_liveness
from core.infra.logs import setup_logging
from workers.recovery import IDEMPOTENT_QUEUES, restore_orphans

STARTED_AT = time.time()
app = Celery("aristobot")
app.config_from_object("celeryconfig")

# Task modules, one per area; each registers its tasks (and periodic schedule, via
# `app.on_after_configure`) on import.
TASK_MODULES = (
    "maintenance",
    "orders",
    "reconciliation",
    "feeds_tasks",
    "webhooks",
    "bots",
    "backtests",
    "stop",
    "notifications",
    "backups",
)


class MissingTaskModule(ImportError):
    """A task module listed in TASK_MODULES does not exist: the worker refuses to start without its tasks."""


def load_task_modules(names: tuple[str, ...] = TASK_MODULES) -> None:
    for area in names:
        module = f"workers.{area}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            raise MissingTaskModule(
                f"task module {module} is listed in workers/celery_app.py TASK_MODULES but "
                "does not exist (renamed or deleted?): its tasks would never run"
            ) from exc


load_task_modules()

if "flower" in sys.argv:
    # Flower loads this module but fires no worker/beat signal: report its liveness from here.
    setup_logging("flower")
    start_liveness("flower")


@signals.setup_logging.connect
def _logging(**_kwargs) -> None:
    setup_logging("worker")


@signals.worker_ready.connect
def _worker_liveness(sender=None, **_kwargs) -> None:
    queues = sorted(sender.app.amqp.queues.consume_from) if sender else []
    # One liveness report per node kind: "worker@host" -> worker, "backtester@host" -> backtester.
    name = sender.hostname.split("@")[0] if sender else "worker"
    start_liveness(name, lambda: {"queues": queues})
    if sender and IDEMPOTENT_QUEUES & set(queues):
        restore_orphans(sender.app, IDEMPOTENT_QUEUES & set(queues), STARTED_AT)


@signals.beat_init.connect
def _beat_liveness(**_kwargs) -> None:
    setup_logging("beat")
    start_liveness("beat")
