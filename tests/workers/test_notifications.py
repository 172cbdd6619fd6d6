"""Outbound delivery through a real Celery worker to a real local HTTP endpoint (Apprise's json://)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from core.infra.bus import get_redis, notification_rate_key
from core.infra.config import get_settings
from core.infra.db import new_session, session_scope, utcnow
from core.models import Notification
from core.notifications import notify
from core.notifications.channels import NewChannel, add
from core.notifications.delivery import deliver
from core.notifications.sweep import requeue_stuck
from tests.conftest import LOG_DIR, start_celery_worker
from tests.notification_support import json_endpoint
from tests.support import stop_process

WORKER_LOG = "notifications-worker.log"


@pytest.fixture(scope="module")
def notifications_worker(infra):
    """A worker of this module's own on the maintenance queue, where deliveries go: the session's shared worker
    may be busy with what earlier modules left it (retries against their stopped venues), which must not decide
    whether a delivery is attempted in time."""
    process = start_celery_worker("maintenance", WORKER_LOG)
    yield process
    stop_process(process)


def _delivery(notification_id: int, until: tuple[str, ...], timeout: float = 30.0) -> Notification:
    deadline = time.monotonic() + timeout
    while True:
        with new_session() as session:
            notification = session.get(Notification, notification_id)
        if notification.delivery in until or time.monotonic() > deadline:
            return notification
        time.sleep(0.05)


def test_a_notification_reaches_the_channels_that_want_it(make_user, notifications_worker):
    user, _ = make_user()
    with json_endpoint() as wanted, json_endpoint() as quiet:
        add(user.id, NewChannel(label="all", url=wanted.url, min_severity="info"))
        add(user.id, NewChannel(label="critical only", url=quiet.url, min_severity="critical"))
        notification_id = notify(user.id, "error", "order", "Order rejected", "insufficient balance")
        assert _delivery(notification_id, ("sent", "failed")).delivery == "sent"
        received = wanted.wait_for(1)
    assert received[0]["title"] == "Order rejected" and received[0]["message"] == "insufficient balance"
    assert quiet.received == []


def test_a_refusing_endpoint_is_retried_then_recorded_as_failed(make_user, notifications_worker):
    user, _ = make_user()
    attempts = get_settings().file.notifications.max_attempts
    with json_endpoint(status=503) as endpoint:
        add(user.id, NewChannel(label="down", url=endpoint.url, min_severity="info"))
        notification_id = notify(user.id, "critical", "arb", "Kill switch")
        notification = _delivery(notification_id, ("failed",))
        assert len(endpoint.received) == attempts, (notification.delivery, notification.delivery_error)
    assert notification.delivery == "failed"
    assert notification.delivery_error.startswith(f"attempt {attempts} of {attempts}:")
    assert endpoint.token not in notification.delivery_error
    for log in ("celery-worker.log", WORKER_LOG):
        assert endpoint.token not in ((LOG_DIR / log).read_text() if (LOG_DIR / log).exists() else "")


def test_an_unreachable_endpoint_is_retried_then_recorded_as_failed(make_user):
    user, _ = make_user()
    with json_endpoint() as endpoint:
        url = endpoint.url
    # Called here, not by a worker: the channel comes after notify(), which so queued nothing.
    notification_id = notify(user.id, "warning", "feed", "Feed stale")
    add(user.id, NewChannel(label="gone", url=url, min_severity="info"))  # nothing listens there any more
    attempts = get_settings().file.notifications.max_attempts
    outcomes = [deliver(notification_id, None, attempt) for attempt in range(attempts)]
    assert [o.state for o in outcomes] == ["retrying"] * (attempts - 1) + ["failed"]
    assert outcomes[0].retry_in_s < outcomes[1].retry_in_s  # backoff doubles
    with new_session() as session:
        assert session.get(Notification, notification_id).delivery == "failed"


def test_past_the_per_user_rate_nothing_more_is_sent(make_user):
    user, _ = make_user()
    notification_id = notify(user.id, "info", "system", "one too many")
    with json_endpoint() as endpoint:
        add(user.id, NewChannel(label="all", url=endpoint.url, min_severity="info"))
        limit = get_settings().file.notifications.per_user_per_minute
        get_redis().set(notification_rate_key(user.id, int(time.time() // 60)), limit, ex=120)
        assert deliver(notification_id).state == "rate_limited"
    assert endpoint.received == []


def test_a_delivery_whose_task_was_lost_is_sent_by_the_sweep(make_user, notifications_worker):
    user, _ = make_user()
    with json_endpoint() as endpoint:
        add(user.id, NewChannel(label="all", url=endpoint.url, min_severity="info"))
        with session_scope() as session:  # what notify() records, its task lost with Redis
            lost = Notification(
                user_id=user.id,
                severity="critical",
                source="arb",
                title="Kill switch",
                delivery="queued",
                created_at=utcnow() - timedelta(minutes=5),
            )
            session.add(lost)
            session.flush()
            notification_id = lost.id
        assert notification_id in requeue_stuck()
        assert _delivery(notification_id, ("sent", "failed")).delivery == "sent"
        assert [m["title"] for m in endpoint.wait_for(1)] == ["Kill switch"]
