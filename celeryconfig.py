"""Celery settings shared by every worker, beat and the web app (which only sends tasks)."""

from celery.schedules import crontab
from kombu import Exchange, Queue

from core import tasks
from core.infra.bus import QUEUES
from core.infra.config import get_settings

_settings = get_settings()

broker_url = _settings.redis_url
result_backend = _settings.redis_url
broker_connection_retry_on_startup = True
broker_transport_options = {"visibility_timeout": 3600, "socket_connect_timeout": 3}

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_expires = 3600
timezone = "UTC"
enable_utc = True

# Each queue has its own direct exchange and routing key; a bare Queue(name) would inherit the default
# exchange and silently land in the default queue.
task_queues = tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES)
task_default_exchange = "maintenance"
task_default_routing_key = "maintenance"
task_default_queue = "maintenance"
task_routes = {
    "workers.orders.*": {"queue": "orders"},
    "workers.webhooks.*": {"queue": "orders"},
    "workers.stop.*": {"queue": "orders"},
    "workers.bots.*": {"queue": "bots"},
    "workers.backtests.*": {"queue": "backtests"},
    "workers.maintenance.*": {"queue": "maintenance"},
    "workers.reconciliation.*": {"queue": "maintenance"},
    "workers.feeds_tasks.*": {"queue": "maintenance"},
    "workers.notifications.*": {"queue": "maintenance"},
    # a daily dump takes minutes: on the niced backtester, never in the slots bot ticks and reconciliation use
    "workers.backups.*": {"queue": "backtests"},
}

# Money paths: a task is acknowledged only after it finished, so a killed worker's task is redelivered;
# every task touching orders is idempotent by order id, which makes the redelivery harmless.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
worker_hijack_root_logger = False
# Task events (received/started/succeeded, for Flower's task lists): measured at 50 alerts/s on `make run`
# (BENCHMARKS.md, session 29) they cost an order 2.7 ms of CPU (the worker's publishes 0.9, Flower digesting them
# 1.4), a tenth of an alert's. Off here and for the `orders` worker; the Procfile turns them on (-E) for the
# maintenance, backtester and bots workers: at that cost a task, their few tasks a minute use well under 0.1 % of a
# core, and the System page links those queues to their task lists. To watch orders too, until the worker restarts:
# `celery -A workers.celery_app control enable_events -d worker@<host>`.
# A STARTED state stored for every task costs more round trips; the long jobs that show progress ask for it.
worker_send_task_events = False
task_send_sent_event = False
task_track_started = False

beat_schedule = {
    "record-queue-depths": {"task": tasks.RECORD_QUEUE_DEPTHS, "schedule": 10.0},
    "daily-backup": {
        "task": tasks.DAILY_BACKUP,
        "schedule": crontab(*reversed(_settings.file.backups.daily_at.split(":"))),  # minute, hour (UTC)
    },
    "daily-ledger-check": {"task": tasks.LEDGER_CHECK, "schedule": crontab(minute=40, hour=3)},
    "requeue-stuck-notifications": {"task": tasks.REQUEUE_STUCK_NOTIFICATIONS, "schedule": 60.0},
}

# A worker that lost Redis reconnects every 0.5-2 s instead of backing off to 30 s (workers/consumer.py).
worker_consumer = "workers.consumer:Consumer"
