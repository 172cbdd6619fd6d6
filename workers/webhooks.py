"""Webhook tasks (routed to the `orders` queue): processing an alert, the recovery sweep, MISS detection."""

from __future__ import annotations

import logging

from celery import current_app, shared_task
from sqlalchemy.exc import OperationalError

from core.db import new_session, session_scope
from core.webhooks import monitor
from core.webhooks.processing import process_alert as process_stored_alert
from core.webhooks.processing import unprocessed_alert_ids

log = logging.getLogger(__name__)

MISS_CHECK_SECONDS = 5.0
SWEEP_SECONDS = 10.0


@shared_task(name="workers.webhooks.process_alert", acks_late=True, autoretry_for=(OperationalError,),
             retry_backoff=1, max_retries=8)
def process_alert(alert_id: int) -> list[int]:
    """Idempotent: an alert already turned into orders is left alone."""
    return process_stored_alert(alert_id, current_app)


@shared_task(name="workers.webhooks.sweep_unprocessed", acks_late=True)
def sweep_unprocessed() -> int:
    """Alerts stored and answered 202 whose processing never ran (web process killed, Postgres blinked)."""
    with new_session() as session:
        alert_ids = unprocessed_alert_ids(session)
    for alert_id in alert_ids:
        process_stored_alert(alert_id, current_app)
    if alert_ids:
        log.warning("webhook_alerts_recovered", extra={"count": len(alert_ids), "first_id": alert_ids[0]})
    return len(alert_ids)


@shared_task(name="workers.webhooks.detect_misses", acks_late=True)
def detect_misses() -> int:
    with session_scope() as session:
        return monitor.check_all(session)


@current_app.on_after_configure.connect
def _schedule(sender, **_kwargs) -> None:
    sender.add_periodic_task(MISS_CHECK_SECONDS, detect_misses.s(), name="webhooks-detect-misses")
    sender.add_periodic_task(SWEEP_SECONDS, sweep_unprocessed.s(), name="webhooks-sweep-unprocessed")
