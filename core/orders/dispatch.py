"""Hand order work to the `orders` queue from processes that are not workers (web, CLI)."""

from __future__ import annotations

import logging

from core.bus import task_sender
from core.orders.submit import enqueue_placement

log = logging.getLogger(__name__)
CANCEL_TASK = "workers.orders.cancel_order"
SYNC_TASK = "workers.orders.sync_order"


def place(order_id: int) -> bool:
    return enqueue_placement(task_sender(), order_id)


def _send(task: str, order_id: int) -> bool:
    try:
        task_sender().send_task(task, args=[order_id], queue="orders")
        return True
    except Exception as exc:  # noqa: BLE001 - kombu transport errors all mean "later"
        log.warning("order_task_enqueue_failed", extra={"order_id": order_id, "task": task, "error": str(exc)[:200]})
        return False


def cancel(order_id: int) -> bool:
    return _send(CANCEL_TASK, order_id)


def sync(order_id: int) -> bool:
    return _send(SYNC_TASK, order_id)
