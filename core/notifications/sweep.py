"""Deliveries whose task never ran are queued again, so a trader is still told.

A notification waits in `queued` until a maintenance worker claims it (`sending`, core/notifications/delivery.py).
Its task can be lost (Redis restarted without the message) or held by a wedged worker (acks_late keeps a reserved
message until that worker dies, and the broker hands it back only after an hour). Every minute the maintenance
worker queues again:
- those still `queued` `requeue_after_s` after they were recorded: the claim makes a late original harmless;
- those left `sending` `stale_sending_s` after they were recorded: a worker killed mid-send. Such a one may reach
  its channels twice; never zero times.
A notification older than a day is left as it is: news that old is no longer worth a message.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, or_, select, update

from core import tasks
from core.infra.config import get_settings
from core.infra.db import session_scope, utcnow
from core.models import Notification

MAX_AGE = timedelta(days=1)
BATCH = 200


def requeue_stuck() -> list[int]:
    """Queue again the deliveries described above; returns their ids."""
    settings = get_settings().file.notifications
    now = utcnow()
    with session_scope() as session:
        stuck = session.scalars(
            select(Notification.id)
            .where(
                Notification.created_at > now - MAX_AGE,
                or_(
                    and_(
                        Notification.delivery == "queued",
                        Notification.created_at < now - timedelta(seconds=settings.requeue_after_s),
                    ),
                    and_(
                        Notification.delivery == "sending",
                        Notification.created_at < now - timedelta(seconds=settings.stale_sending_s),
                    ),
                ),
            )
            .order_by(Notification.id)
            .limit(BATCH)
        ).all()
        if stuck:
            session.execute(update(Notification).where(Notification.id.in_(stuck)).values(delivery="queued"))
    for notification_id in stuck:
        tasks.send_deliver_notification(notification_id)
    return list(stuck)
