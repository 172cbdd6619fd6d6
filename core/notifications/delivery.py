"""Outbound delivery of one notification to the user's channels (run by the maintenance queue's task).

Rate-limited per user (`notifications.per_user_per_minute`, counted on the first attempt); a channel that
was unreachable or refused is tried again by the caller after a doubling backoff, up to
`notifications.max_attempts`; then the notification is recorded as failed, with a reason that shows no URL.
The first attempt claims the notification (`queued` -> `sending`, one conditional UPDATE), so a delivery queued
twice (core/notifications/sweep.py puts back those whose task was lost) is sent once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import select, update

from core.infra.bus import get_redis, notification_rate_key
from core.infra.config import get_settings
from core.infra.db import session_scope
from core.models import Notification, NotificationChannel
from core.notifications.apprise_send import send
from core.notifications.channels import record_attempt


@dataclass(frozen=True)
class Attempt:
    """What one attempt did: the channels to try again (empty: done) and after how many seconds."""

    state: str
    retry_channel_ids: list[int] = field(default_factory=list)
    retry_in_s: float = 0.0


CLAIMABLE = ("queued", "none")  # none: no channel wanted it when it was recorded (a later call may still send it)


def deliver(notification_id: int, channel_ids: list[int] | None = None, attempt: int = 0) -> Attempt:
    settings = get_settings().file.notifications
    if attempt == 0 and not _claim(notification_id):
        return Attempt("already_handled")  # sent, being sent, or deleted meanwhile
    with session_scope() as session:
        notification = session.get(Notification, notification_id)
        if notification is None:
            return Attempt("gone")
        channels = [
            (c.id, c.url())
            for c in session.scalars(
                select(NotificationChannel)
                .where(NotificationChannel.user_id == notification.user_id)
                .order_by(NotificationChannel.id)
            )
            if c.wants(notification.severity) and (channel_ids is None or c.id in channel_ids)
        ]
        user_id, title, body, severity = (
            notification.user_id,
            notification.title,
            notification.body,
            notification.severity,
        )
    if not channels:
        return _finish(notification_id, "none", None)
    if attempt == 0 and not _within_rate(user_id, settings.per_user_per_minute):
        return _finish(
            notification_id, "rate_limited", f"more than {settings.per_user_per_minute} notifications sent this minute"
        )
    failed: list[tuple[int, str, bool]] = []
    for channel_id, url in channels:
        result = send(url, title, body, severity)
        record_attempt(channel_id, result.error)
        if not result.ok:
            failed.append((channel_id, result.error or "failed", result.retryable))
    if not failed:
        return _finish(notification_id, "sent", None)
    retry = [channel_id for channel_id, _error, retryable in failed if retryable]
    reason = f"attempt {attempt + 1} of {settings.max_attempts}: {failed[-1][1]}"
    if retry and attempt + 1 < settings.max_attempts:
        _finish(notification_id, "retrying", reason)
        return Attempt("retrying", retry, settings.retry_backoff_s * 2**attempt)
    return _finish(notification_id, "failed", reason)


def _claim(notification_id: int) -> bool:
    """The first attempt takes the notification once: a second task for it (queued again) finds it taken."""
    with session_scope() as session:
        claimed = session.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.delivery.in_(CLAIMABLE))
            .values(delivery="sending")
            .returning(Notification.id)
        ).first()
    return claimed is not None


def _within_rate(user_id: int, per_minute: int) -> bool:
    key = notification_rate_key(user_id, int(time.time() // 60))
    client = get_redis()
    count = client.incr(key)
    if count == 1:
        client.expire(key, 120)
    return count <= per_minute


def _finish(notification_id: int, state: str, error: str | None) -> Attempt:
    with session_scope() as session:
        notification = session.get(Notification, notification_id)
        if notification is not None:
            notification.delivery, notification.delivery_error = state, error[:300] if error else None
    return Attempt(state)
