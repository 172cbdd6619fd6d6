"""Every Celery task name, defined once, and a typed helper per task that sends it.

The workers register their tasks under these names (`@shared_task(name=tasks.PLACE_ORDER)`); every
sender goes through the `send_*` helpers below. Which queue a task lands on is decided in one place
only, `celeryconfig.task_routes`: no sender names a queue.

Each helper takes the Celery app to send with: a worker passes its own (`current_app`), the other
processes (web, CLI, feeds) leave it out and get the send-only app of `core.infra.bus.task_sender`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.infra.bus import task_sender

if TYPE_CHECKING:
    from celery import Celery
    from celery.result import AsyncResult

# Orders (queue `orders`)
PLACE_ORDER = "workers.orders.place_order"
CANCEL_ORDER = "workers.orders.cancel_order"
SYNC_ORDER = "workers.orders.sync_order"
WATCH_TRAILING_STOPS = "workers.orders.watch_trailing_stops"
RECORD_FILLS = "workers.orders.record_fills"
FLATTEN = "workers.stop.flatten"
CLOSE_BOT = "workers.stop.close_bot"
# Webhooks (queue `orders`)
DRAIN_ALERTS = "workers.webhooks.drain_alerts"
SWEEP_UNPROCESSED_ALERTS = "workers.webhooks.sweep_unprocessed"
SWEEP_UNPROTECTED_ENTRIES = "workers.webhooks.sweep_unprotected"
TRADE_AFTER_CANCELLING = "workers.webhooks.trade_after_cancelling"
DETECT_MISSES = "workers.webhooks.detect_misses"
# Bots (queue `bots`)
BOT_TICK = "workers.bots.tick"
# Backtests (queue `backtests`)
RUN_BACKTEST = "workers.backtests.run_backtest"
# Market data and housekeeping (queue `maintenance`)
IMPORT_CANDLES = "workers.feeds_tasks.import_candles"
DOWNLOAD_CANDLES = "workers.feeds_tasks.download_candles"
WATCH_FEEDS = "workers.feeds_tasks.watch_feeds"
RECONCILE_ALL = "workers.reconciliation.reconcile_all"
RECONCILE_BROKER = "workers.reconciliation.reconcile_broker"
RECORD_QUEUE_DEPTHS = "workers.maintenance.record_queue_depths"
PING = "workers.maintenance.ping"
DELIVER_NOTIFICATION = "workers.notifications.deliver"
DAILY_BACKUP = "workers.backups.daily_backup"
LEDGER_CHECK = "workers.maintenance.ledger_check"
REQUEUE_STUCK_NOTIFICATIONS = "workers.notifications.requeue_stuck"


def _send(
    app: Celery | None, name: str, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None, **options: Any
) -> AsyncResult:
    return (app or task_sender()).send_task(name, args=args, kwargs=kwargs, **options)


def send_place_order(order_id: int, *, app: Celery | None = None) -> AsyncResult:
    # No result: the order row is the result (and subscribing to one costs the sender a Redis round trip).
    return _send(app, PLACE_ORDER, [order_id], ignore_result=True)


def send_cancel_order(order_id: int, *, app: Celery | None = None) -> AsyncResult:
    return _send(app, CANCEL_ORDER, [order_id])


def send_sync_order(order_id: int, *, app: Celery | None = None) -> AsyncResult:
    return _send(app, SYNC_ORDER, [order_id])


def send_watch_trailing_stops(*, app: Celery | None = None) -> AsyncResult:
    return _send(app, WATCH_TRAILING_STOPS, ignore_result=True)


def send_record_fills(broker_id: int, symbol: str, *, countdown: float, app: Celery | None = None) -> AsyncResult:
    return _send(app, RECORD_FILLS, [broker_id, symbol], countdown=countdown, ignore_result=True)


def send_flatten(user_id: int, broker_ids: list[int] | None, *, app: Celery | None = None) -> AsyncResult:
    return _send(app, FLATTEN, [user_id, broker_ids], ignore_result=True)


def send_close_bot(user_id: int, bot_id: int, pause: bool, *, app: Celery | None = None) -> AsyncResult:
    return _send(app, CLOSE_BOT, [user_id, bot_id, pause], ignore_result=True)


def send_drain_alerts(*, app: Celery | None = None) -> AsyncResult:
    return _send(app, DRAIN_ALERTS, ignore_result=True)


def send_sweep_unprocessed_alerts(*, app: Celery | None = None) -> AsyncResult:
    return _send(app, SWEEP_UNPROCESSED_ALERTS)


def send_sweep_unprotected_entries(*, app: Celery | None = None) -> AsyncResult:
    return _send(app, SWEEP_UNPROTECTED_ENTRIES)


def send_trade_after_cancelling(alert_id: int, *, app: Celery | None = None) -> AsyncResult:
    return _send(app, TRADE_AFTER_CANCELLING, [alert_id])


def send_detect_misses(*, app: Celery | None = None) -> AsyncResult:
    return _send(app, DETECT_MISSES)


def send_bot_tick(
    bot_id: int, candle_open_time: int, timeframe: str, issued_ms: int | None = None, *, app: Celery | None = None
) -> AsyncResult:
    return _send(app, BOT_TICK, [bot_id, candle_open_time, timeframe], {"issued_ms": issued_ms})


def send_run_backtest(run_id: int, *, app: Celery | None = None) -> AsyncResult:
    return _send(app, RUN_BACKTEST, [run_id])


def send_import_candles(
    path: str, venue: str, symbol: str, timeframe: str, source: str, *, app: Celery | None = None
) -> AsyncResult:
    return _send(
        app,
        IMPORT_CANDLES,
        kwargs={"path": path, "venue": venue, "symbol": symbol, "timeframe": timeframe, "source": source},
    )


def send_download_candles(
    venue: str, symbol: str, timeframe: str, start_ms: int, end_ms: int, *, app: Celery | None = None
) -> AsyncResult:
    return _send(
        app,
        DOWNLOAD_CANDLES,
        kwargs={"venue": venue, "symbol": symbol, "timeframe": timeframe, "start_ms": start_ms, "end_ms": end_ms},
    )


def send_reconcile_all(*, app: Celery | None = None) -> AsyncResult:
    return _send(app, RECONCILE_ALL)


def send_reconcile_broker(broker_id: int, *, expires: float | None = None, app: Celery | None = None) -> AsyncResult:
    return _send(app, RECONCILE_BROKER, [broker_id], expires=expires)


def send_ping(value: str = "pong", *, app: Celery | None = None) -> AsyncResult:
    return _send(app, PING, [value])


def send_deliver_notification(notification_id: int, *, app: Celery | None = None) -> AsyncResult:
    """No retry of the send itself: the caller may be placing an order (a failure is recorded instead)."""
    return _send(app, DELIVER_NOTIFICATION, [notification_id], ignore_result=True, retry=False)


def send_daily_backup(*, app: Celery | None = None) -> AsyncResult:
    return _send(app, DAILY_BACKUP)
