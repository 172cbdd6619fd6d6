"""Webhook tasks (routed to the `orders` queue): processing alerts, the recovery sweeps, MISS detection,
the stop-loss / take-profit placed after an entry fills, and a trade that first cancels that protection."""

from __future__ import annotations

import logging

from celery import current_app, shared_task, signals
from sqlalchemy.exc import OperationalError

from core import tasks
from core.infra.bus import get_redis
from core.infra.db import new_session, session_scope
from core.orders import fills, placement
from core.webhooks import monitor
from core.webhooks.handoff import drain
from core.webhooks.processing import process_alerts, trade_after_cancelling, unprocessed_alert_ids
from core.webhooks.protection import protect_entry, unprotected_entry_ids

log = logging.getLogger(__name__)

MISS_CHECK_SECONDS = 5.0
SWEEP_SECONDS = 10.0
SWEEP_BATCH = 20  # alerts recorded per transaction by the sweep


def _process_here(alert_ids: list[int]) -> list[int]:
    """Idempotent: an alert already turned into orders is left alone. Its orders are sent right here:
    a second trip through the queue would cost more CPU than the placement itself."""
    return process_alerts(alert_ids, current_app, send_now=True)


@shared_task(
    name=tasks.DRAIN_ALERTS,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=1,
    max_retries=8,
    ignore_result=True,
)
def drain_alerts() -> int:
    """Alerts the web handed off (see core.webhooks.handoff)."""
    return drain(get_redis(), _process_here, current_app)


@shared_task(name=tasks.SWEEP_UNPROCESSED_ALERTS, acks_late=True)
def sweep_unprocessed() -> int:
    """Alerts stored and answered 202 whose processing never ran (web process killed, Postgres blinked)."""
    with new_session() as session:
        alert_ids = unprocessed_alert_ids(session)
    for start in range(0, len(alert_ids), SWEEP_BATCH):
        _process_here(alert_ids[start : start + SWEEP_BATCH])
    if alert_ids:
        log.warning("webhook_alerts_recovered", extra={"count": len(alert_ids), "first_id": alert_ids[0]})
    return len(alert_ids)


def _protect_after_fill(order_id: int) -> None:
    protect_entry(order_id, current_app)


@signals.worker_init.connect
def _protect_fills_in_workers(**_kwargs) -> None:
    # Any worker that sees a webhook entry fill (placement, sync, cancel, fills batch) protects it.
    fills.on_final_fill("webhook", _protect_after_fill)


@shared_task(name=tasks.SWEEP_UNPROTECTED_ENTRIES, acks_late=True)
def sweep_unprotected() -> int:
    """Filled entries whose stop-loss / take-profit was never recorded (worker killed after the fill)."""
    with new_session() as session:
        entry_ids = unprotected_entry_ids(session)
    recorded = []
    for entry_id in entry_ids:
        try:
            recorded.append(protect_entry(entry_id, current_app))
        except LookupError as waiting:  # fills not in the ledger yet: the next sweep tries again
            log.info("webhook_protection_waits", extra={"order_id": entry_id, "reason": str(waiting)})
    if entry_ids:
        log.warning(
            "webhook_protection_recovered",
            extra={"count": len(entry_ids), "first_id": entry_ids[0], "recorded": sum(1 for r in recorded if r)},
        )
    return len(entry_ids)


@shared_task(
    name=tasks.TRADE_AFTER_CANCELLING, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=1, max_retries=8
)
def trade_after_cancelling_protection(alert_id: int) -> list[int]:
    """A close, or a trade the other way, whose position is protected: cancel the protection at the
    venue, then trade."""
    return trade_after_cancelling(alert_id, current_app, placement.cancel, send_now=True)


@shared_task(name=tasks.DETECT_MISSES, acks_late=True)
def detect_misses() -> int:
    with session_scope() as session:
        return monitor.check_all(session)


@current_app.on_after_configure.connect
def _schedule(sender, **_kwargs) -> None:
    sender.add_periodic_task(MISS_CHECK_SECONDS, detect_misses.s(), name="webhooks-detect-misses")
    sender.add_periodic_task(SWEEP_SECONDS, sweep_unprocessed.s(), name="webhooks-sweep-unprocessed")
    sender.add_periodic_task(SWEEP_SECONDS, sweep_unprotected.s(), name="webhooks-sweep-unprotected")
