"""notify(): recorded once per dedup window, pushed to the user's pages, read state kept per user."""

from __future__ import annotations

import json
import secrets
import time

import pytest

from core.infra.bus import get_redis, notifications_channel
from core.infra.db import new_session
from core.models import Notification
from core.notifications import notify, notify_admins
from core.notifications.center import Filters, listing, mark_read, unread_count


def _messages(pubsub, count: int, timeout: float = 5.0) -> list[dict]:
    found, deadline = [], time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message and message["type"] == "message":
            found.append(json.loads(message["data"]))
    return found


def test_notify_records_and_pushes_the_unread_count(make_user, redis_server):
    user, _ = make_user()
    pubsub = get_redis().pubsub()
    pubsub.subscribe(notifications_channel(user.id))
    _messages(pubsub, 1, timeout=0.5)  # the subscribe confirmation
    first = notify(user.id, "warning", "bot", "Bot paused", "ZeroDivisionError at line 3", "/bots/1")
    second = notify(user.id, "error", "order", "Order rejected", link="/trading/orders/2")
    pushed = _messages(pubsub, 2)
    pubsub.close()
    assert [m["unread"] for m in pushed] == [1, 2]
    assert pushed[0]["id"] == first and pushed[1]["title"] == "Order rejected"
    with new_session() as session:
        stored = session.get(Notification, first)
        assert (stored.severity, stored.source, stored.body, stored.link) == (
            "warning",
            "bot",
            "ZeroDivisionError at line 3",
            "/bots/1",
        )
        assert stored.delivery == "none"  # no channel: nothing to send outside
        assert [n.id for n in listing(session, user.id, Filters())] == [second, first]
        assert [n.id for n in listing(session, user.id, Filters(severity="error"))] == [second]
        assert [n.id for n in listing(session, user.id, Filters(source="bot"))] == [first]


def test_the_same_condition_notifies_once_per_window(make_user):
    user, _ = make_user()
    key = f"bot:{secrets.token_hex(3)}:paused"
    assert notify(user.id, "warning", "bot", "Bot paused", dedup_key=key) is not None
    assert notify(user.id, "warning", "bot", "Bot paused again", dedup_key=key) is None
    assert notify(user.id, "warning", "bot", "Another bot paused", dedup_key=key + "x") is not None
    other, _ = make_user()
    assert notify(other.id, "warning", "bot", "Bot paused", dedup_key=key) is not None  # per user
    with new_session() as session:
        assert unread_count(session, user.id) == 2


def test_an_unknown_severity_is_a_programming_error(make_user):
    user, _ = make_user()
    with pytest.raises(ValueError, match="unknown severity"):
        notify(user.id, "fatal", "bot", "x")


def test_a_failure_to_record_never_reaches_the_caller(infra):
    assert notify(2_000_000_000, "info", "system", "user does not exist") is None


def test_admins_are_told_and_traders_are_not(make_user):
    admin, _ = make_user(is_admin=True)
    trader, _ = make_user()
    key = f"restart:{secrets.token_hex(3)}"
    ids = notify_admins("warning", "system", "Process restarted: worker", dedup_key=key)
    with new_session() as session:
        assert any(session.get(Notification, i).user_id == admin.id for i in ids)
        assert unread_count(session, trader.id) == 0


def test_mark_read_one_then_all(make_user):
    user, _ = make_user()
    ids = [notify(user.id, "info", "system", f"n{i}") for i in range(3)]
    assert mark_read(user.id, [ids[0]]) == 2
    other, _ = make_user()
    assert mark_read(other.id, [ids[1]]) == 0  # someone else's ids change nothing
    with new_session() as session:
        assert unread_count(session, user.id) == 2
    assert mark_read(user.id) == 0


def test_a_task_queue_that_is_down_loses_the_delivery_not_the_notification(make_user, monkeypatch):
    from celery import Celery

    from core.notifications.channels import NewChannel, add

    user, _ = make_user()
    add(user.id, NewChannel(label="phone", url="ntfy://aristobot-test-topic", min_severity="info"))
    dead = Celery("dead", broker="redis://127.0.0.1:9/0", set_as_current=False)
    dead.conf.broker_transport_options = {"socket_connect_timeout": 0.5}
    monkeypatch.setattr("core.tasks.task_sender", lambda: dead)
    notification_id = notify(user.id, "critical", "arb", "Kill switch")
    with new_session() as session:
        stored = session.get(Notification, notification_id)
        assert stored.delivery == "failed" and "task queue unreachable" in stored.delivery_error
        assert unread_count(session, user.id) == 1
