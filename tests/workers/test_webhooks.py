"""Webhook tasks on a real Celery worker: the recovery sweep and MISS detection; the beat schedule."""

# ruff: noqa: F811  (fixtures imported from tests.core.webhooks.fixtures are parameters here)
from __future__ import annotations

import secrets
import time
from datetime import timedelta

from sqlalchemy import select

from core import tasks
from core.infra.db import new_session, session_scope, utcnow
from core.models import Order, Webhook, WebhookAlert, WebhookExpectation
from tests.core.webhooks.fixtures import broker_of, webhook_of  # noqa: F401


def test_beat_schedules_miss_detection_and_the_recovery_sweep():
    from workers.celery_app import app

    app.loader.import_default_modules()
    schedule = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {tasks.DETECT_MISSES, tasks.SWEEP_UNPROCESSED_ALERTS} <= schedule
    assert app.amqp.router.route({}, tasks.SWEEP_UNPROCESSED_ALERTS)["queue"].name == "orders"


def test_an_alert_stored_while_processing_was_down_is_turned_into_an_order_by_the_sweep(
    celery_worker_process, make_user, broker_of, webhook_of
):
    from workers.celery_app import app

    user, _ = make_user()
    webhook_id, _ = webhook_of(user, broker_of(user, markets=False))
    with session_scope() as session:
        alert = WebhookAlert(
            webhook_id=webhook_id,
            status="accepted",
            http_status=202,
            body="{}",
            headers={},
            action="buy",
            symbol="BTCUSDT",
            payload={"action": "buy", "symbol": "BTCUSDT"},
            received_at=utcnow() - timedelta(seconds=30),
            idempotency_key=secrets.token_hex(16),
        )
        session.add(alert)
        session.flush()
        alert_id = alert.id
    recovered = tasks.send_sweep_unprocessed_alerts(app=app).get(timeout=30)
    assert recovered >= 1
    with new_session() as session:
        stored = session.get(WebhookAlert, alert_id)
        orders = session.scalars(
            select(Order).where(Order.source == "webhook", Order.source_ref == str(alert_id))
        ).all()
    assert stored.processed_at is not None and [o.id for o in orders] == stored.order_ids
    assert len(orders) == 1
    # A second sweep finds nothing more to do for it.
    tasks.send_sweep_unprocessed_alerts(app=app).get(timeout=30)
    with new_session() as session:
        assert (
            len(
                session.scalars(select(Order).where(Order.source == "webhook", Order.source_ref == str(alert_id))).all()
            )
            == 1
        )


def test_detect_misses_on_the_worker_pauses_a_silent_webhook(celery_worker_process, make_user, broker_of, webhook_of):
    from workers.celery_app import app

    user, _ = make_user()
    webhook_id, _ = webhook_of(user, broker_of(user), cadence="1m")
    with session_scope() as session:
        webhook = session.get(Webhook, webhook_id)
        webhook.cadence_from = webhook.evaluated_until = utcnow().replace(second=0, microsecond=0) - timedelta(
            minutes=5
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tasks.send_detect_misses(app=app).get(timeout=30)
        with new_session() as session:
            if session.get(Webhook, webhook_id).paused:
                break
    with new_session() as session:
        webhook = session.get(Webhook, webhook_id)
        outcomes = session.scalars(
            select(WebhookExpectation.outcome).where(WebhookExpectation.webhook_id == webhook_id)
        ).all()
    assert webhook.paused and "missed in a row" in webhook.paused_reason
    assert outcomes[:3] == ["miss", "miss", "miss"]
