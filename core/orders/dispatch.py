"""Enqueue order work for the `orders` workers from processes that are not workers (web, CLI, bots).

`enqueue_*` only hands the order id to the queue; the worker then sends it to the venue with
`core.orders.placement.place` / `cancel`."""

from __future__ import annotations

import logging

from core import tasks
from core.orders.submit import enqueue_placement

log = logging.getLogger(__name__)


def enqueue_order(order_id: int) -> bool:
    """Queue the recorded order for placement; False when the broker is unreachable (it stays `new`)."""
    return enqueue_placement(None, order_id)


def enqueue_cancel(order_id: int) -> bool:
    try:
        tasks.send_cancel_order(order_id)
        return True
    except Exception as exc:  # noqa: BLE001 - kombu transport errors all mean "later"
        log.warning(
            "order_task_enqueue_failed",
            extra={"order_id": order_id, "task": tasks.CANCEL_ORDER, "error": str(exc)[:200]},
        )
        return False
