"""Outbound notification delivery on the `maintenance` queue: never on the order path."""

from __future__ import annotations

from celery import shared_task

from core import tasks
from core.notifications.delivery import deliver as deliver_once
from core.notifications.sweep import requeue_stuck as requeue_stuck_deliveries


@shared_task(name=tasks.DELIVER_NOTIFICATION, bind=True, max_retries=None)
def deliver(self, notification_id: int, channel_ids: list[int] | None = None) -> str:
    attempt = deliver_once(notification_id, channel_ids, attempt=self.request.retries)
    if attempt.retry_channel_ids:
        raise self.retry(
            args=[notification_id], kwargs={"channel_ids": attempt.retry_channel_ids}, countdown=attempt.retry_in_s
        )
    return attempt.state


@shared_task(name=tasks.REQUEUE_STUCK_NOTIFICATIONS, ignore_result=True)
def requeue_stuck() -> int:
    return len(requeue_stuck_deliveries())
