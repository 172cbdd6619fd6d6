"""Reconciliation of our orders with each venue, and of what was done there outside Aristobot
(core.reconciliation): on a schedule (beat) and once at worker start-up."""

from __future__ import annotations

import logging

from celery import current_app, shared_task, signals

from core import reconciliation, tasks
from core.infra.bus import get_redis
from core.orders import reconcile
from core.orders.submit import enqueue_placement

log = logging.getLogger(__name__)
EVERY_S = reconcile.PASS_EVERY.total_seconds()


def _enqueue(order_id: int) -> bool:
    from workers.celery_app import app

    return enqueue_placement(app, order_id)


def _placements_waiting() -> bool:
    return get_redis().llen("orders") > 0


@shared_task(name=tasks.RECONCILE_ALL, acks_late=True)
def reconcile_all() -> list[int]:
    """Fan out one task per broker: a venue that is down must not hold up every other broker's pass.
    A pass not started before the next one is due is dropped (`expires`). Quiet connections are in it
    only once per reconcile.SWEEP_EVERY (see reconcile.brokers_to_reconcile)."""
    broker_ids = reconcile.brokers_to_reconcile()
    for broker_id in broker_ids:
        tasks.send_reconcile_broker(broker_id, expires=EVERY_S, app=current_app)
    return broker_ids


@shared_task(name=tasks.RECONCILE_BROKER, acks_late=True)
def reconcile_broker(broker_id: int) -> dict:
    return reconcile.report_dict(
        reconciliation.reconcile_broker(broker_id, _enqueue, placements_waiting=_placements_waiting)
    )


@current_app.on_after_configure.connect
def _schedule(sender, **_kwargs) -> None:
    sender.add_periodic_task(EVERY_S, reconcile_all.s(), name="reconcile-orders")


@signals.worker_ready.connect
def _reconcile_at_startup(sender=None, **_kwargs) -> None:
    """A worker that just started (maybe after a crash) repairs what the crash left behind."""
    try:
        tasks.send_reconcile_all(app=sender.app)
    except Exception as exc:  # noqa: BLE001 - the schedule will run it anyway
        log.warning("startup_reconcile_not_enqueued", extra={"error": str(exc)[:200]})
