"""A delivery whose task was lost is queued again once it is overdue; a delivery queued twice is sent once."""

from __future__ import annotations

from datetime import timedelta

from core.infra.db import new_session, session_scope, utcnow
from core.models import Notification
from core.notifications.channels import NewChannel, add
from core.notifications.delivery import deliver
from core.notifications.sweep import requeue_stuck
from tests.notification_support import json_endpoint


def _recorded(user_id: int, delivery: str, age: timedelta) -> int:
    """A notification as notify() leaves it, `age` ago, with no task behind it (the message was lost)."""
    with session_scope() as session:
        notification = Notification(
            user_id=user_id,
            severity="critical",
            source="arb",
            title=f"{delivery} {age}",
            delivery=delivery,
            created_at=utcnow() - age,
        )
        session.add(notification)
        session.flush()
        return notification.id


def test_only_overdue_deliveries_are_queued_again(make_user):
    user, _ = make_user()
    overdue = _recorded(user.id, "queued", timedelta(minutes=5))
    killed_mid_send = _recorded(user.id, "sending", timedelta(minutes=30))
    left_alone = [
        _recorded(user.id, "queued", timedelta(seconds=5)),  # its task is on its way
        _recorded(user.id, "sending", timedelta(minutes=5)),  # being sent
        _recorded(user.id, "sent", timedelta(minutes=5)),
        _recorded(user.id, "failed", timedelta(minutes=5)),
        _recorded(user.id, "none", timedelta(minutes=5)),
        _recorded(user.id, "queued", timedelta(days=2)),  # news that old is not worth a message
    ]
    requeued = requeue_stuck()
    assert {overdue, killed_mid_send} <= set(requeued)
    assert not set(left_alone) & set(requeued)
    with new_session() as session:
        assert session.get(Notification, killed_mid_send).delivery == "queued"  # claimable again
        assert session.get(Notification, left_alone[1]).delivery == "sending"


def test_a_delivery_queued_twice_reaches_the_channel_once(make_user):
    user, _ = make_user()
    with json_endpoint() as endpoint:
        add(user.id, NewChannel(label="all", url=endpoint.url, min_severity="info"))
        notification_id = _recorded(user.id, "queued", timedelta(minutes=5))
        first, second = deliver(notification_id), deliver(notification_id)
        assert endpoint.wait_for(1) and len(endpoint.received) == 1
    assert (first.state, second.state) == ("sent", "already_handled")
    with new_session() as session:
        assert session.get(Notification, notification_id).delivery == "sent"
