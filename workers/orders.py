"""Order tasks on the `orders` queue: acks_late and idempotent by order id (see core.orders.service)."""

from __future__ import annotations

from celery import shared_task
from sqlalchemy.exc import OperationalError

from core.exchanges.errors import ExchangeError
from core.orders import service

# Raised before anything reached the venue (markets could not be loaded, database restarting):
# the order is still `new`, so trying again is safe.
TRANSIENT = (ExchangeError, OperationalError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": 1, "retry_backoff_max": 30, "max_retries": 8}


@shared_task(name="workers.orders.place_order", acks_late=True, **RETRY)
def place_order(order_id: int) -> dict:
    return service.place(order_id).as_dict()


@shared_task(name="workers.orders.cancel_order", acks_late=True, **RETRY)
def cancel_order(order_id: int) -> dict:
    return service.cancel(order_id).as_dict()


@shared_task(name="workers.orders.sync_order", acks_late=True, **RETRY)
def sync_order(order_id: int) -> dict:
    return service.sync(order_id).as_dict()
