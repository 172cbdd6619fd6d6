"""Order tasks on the `orders` queue: acks_late and idempotent by order id (see core.orders.placement)."""

from __future__ import annotations

import logging
import threading
import time

from celery import current_app, shared_task, signals
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import configure_mappers

from core import tasks
from core.brokers import warm_adapters
from core.exchanges.errors import ExchangeError
from core.infra.bus import fills_pending, get_redis
from core.orders import fills, placement, trailing_watch
from core.orders.submit import enqueue_placement

log = logging.getLogger(__name__)

# Raised before anything reached the venue (markets could not be loaded, database restarting):
# the order is still `new`, so trying again is safe.
TRANSIENT = (ExchangeError, OperationalError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": 1, "retry_backoff_max": 30, "max_retries": 8}
# Fills of a broker's symbol are fetched at most once per batch window (one trades query for all of
# the orders filled meanwhile); the pending key expires in case its task is lost.
FILLS_BATCH_SECONDS = 1.0
FILLS_PENDING_TTL = 10


def _schedule_fills(broker_id: int, symbol: str) -> bool:
    """True once a batch that will see this fill is scheduled; False (Redis down) = record them now."""
    try:
        client, key = get_redis(), fills_pending(broker_id, symbol)
        if client.set(key, "1", nx=True, ex=FILLS_PENDING_TTL):
            try:
                tasks.send_record_fills(broker_id, symbol, countdown=FILLS_BATCH_SECONDS, app=current_app)
            except Exception:
                client.delete(key)
                raise
        return True
    except Exception as exc:  # noqa: BLE001 - redis/kombu transport errors: fall back to one query per order
        log.warning("fills_batch_schedule_failed", extra={"broker_id": broker_id, "error": str(exc)[:200]})
        return False


@signals.worker_init.connect
def _batch_fills_in_workers(**_kwargs) -> None:
    # Worker processes only (a pool forks after this): a CLI or web process importing the tasks keeps
    # recording fills right away.
    fills.record_fills_later(_schedule_fills)


@signals.worker_init.connect
def _configure_models_before_fork(**_kwargs) -> None:
    configure_mappers()  # once, before the pool forks: not in each pool process at its first order


@signals.worker_process_init.connect
def _warm_up_pool_process(**_kwargs) -> None:
    # A pool process met its first orders cold: a database connection to open, the venue's markets and
    # clock to fetch (the first second of a burst waited ~0.3 s for them). Warmed in the background, so
    # the process takes tasks at once; a task arriving meanwhile does what is still missing itself.
    threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()


def _warm_up() -> None:
    started = time.monotonic()
    try:
        adapters = warm_adapters()
    except Exception as exc:  # noqa: BLE001 - an optimisation only: the first task connects as before
        log.info("pool_process_not_warmed", extra={"error": type(exc).__name__})
        return
    log.info("pool_process_warm", extra={"adapters": adapters, "ms": round((time.monotonic() - started) * 1000)})


@shared_task(name=tasks.PLACE_ORDER, acks_late=True, **RETRY)
def place_order(order_id: int) -> dict:
    return placement.place(order_id).as_dict()


@shared_task(name=tasks.CANCEL_ORDER, acks_late=True, **RETRY)
def cancel_order(order_id: int) -> dict:
    return placement.cancel(order_id).as_dict()


@shared_task(name=tasks.SYNC_ORDER, acks_late=True, **RETRY)
def sync_order(order_id: int) -> dict:
    return placement.sync(order_id).as_dict()


@shared_task(name=tasks.WATCH_TRAILING_STOPS, acks_late=True, ignore_result=True, expires=trailing_watch.WATCH_EVERY_S)
def watch_trailing_stops() -> list[int]:
    """Emulated trailing stops: follow the heartbeat's prices, send the crossed ones (core.orders.trailing_watch)."""
    return trailing_watch.watch_pass(lambda order_id: enqueue_placement(current_app, order_id))


@current_app.on_after_configure.connect
def _schedule(sender, **_kwargs) -> None:
    sender.add_periodic_task(trailing_watch.WATCH_EVERY_S, watch_trailing_stops.s(), name="watch-trailing-stops")


@shared_task(name=tasks.RECORD_FILLS, acks_late=True, ignore_result=True, **RETRY)
def record_fills(broker_id: int, symbol: str) -> list[int]:
    # Cleared before the venue is asked: a fill committed from now on schedules the next batch.
    get_redis().delete(fills_pending(broker_id, symbol))
    return fills.record_symbol_fills(broker_id, symbol)
