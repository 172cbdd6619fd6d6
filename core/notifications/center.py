"""Recording, publishing and reading notifications (the in-app centre)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core import tasks
from core.infra.bus import get_redis, notifications_channel
from core.infra.config import get_settings
from core.infra.db import session_scope, utcnow
from core.models import Notification, NotificationChannel, User
from core.models.notifications import SEVERITIES

log = logging.getLogger(__name__)
SOURCES = ("bot", "webhook", "order", "arb", "feed", "system", "test")


@dataclass(frozen=True)
class Filters:
    severity: str | None = None
    source: str | None = None
    unread_only: bool = False


def notify(
    user_id: int,
    severity: str,
    source: str,
    title: str,
    body: str = "",
    link: str | None = None,
    dedup_key: str | None = None,
) -> int | None:
    """Tell a user. Returns the notification's id, or None when the same `dedup_key` already notified
    within `notifications.dedup_window_s` (or recording failed: logged, never raised to the caller)."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}; expected one of {SEVERITIES}")
    try:
        with session_scope() as session:
            notification = _record(session, user_id, severity, source, title, body, link, dedup_key)
            if notification is None:
                return None
            wanted = _wants_delivery(session, user_id, severity)
            notification.delivery = "queued" if wanted else "none"
            session.flush()
            notification_id = notification.id
            unread = unread_count(session, user_id)
    except Exception:  # noqa: BLE001 - telling the trader must never break what happened
        log.exception("notification_not_recorded", extra={"user_id": user_id, "source": source})
        return None
    publish(user_id, unread, {"id": notification_id, "severity": severity, "title": title[:200]})
    if wanted:
        _queue_delivery(notification_id)
    return notification_id


def notify_admins(
    severity: str, source: str, title: str, body: str = "", link: str | None = None, dedup_key: str | None = None
) -> list[int]:
    """Tell every active administrator (process restarts, a stale feed, the arbitrage engine)."""
    try:
        with session_scope() as session:
            admins = session.scalars(select(User.id).where(User.is_admin, User.is_active)).all()
    except Exception:  # noqa: BLE001
        log.exception("notification_admins_unknown", extra={"source": source})
        return []
    ids = [notify(admin, severity, source, title, body, link, dedup_key) for admin in admins]
    return [i for i in ids if i is not None]


def _record(
    session: Session,
    user_id: int,
    severity: str,
    source: str,
    title: str,
    body: str,
    link: str | None,
    dedup_key: str | None,
) -> Notification | None:
    if dedup_key:
        # One writer per (user, key) at a time, so two processes noticing the same condition notify once.
        session.execute(
            text("SELECT pg_advisory_xact_lock(:user_id, hashtext(:key))"), {"user_id": user_id, "key": dedup_key}
        )
        since = utcnow() - timedelta(seconds=get_settings().file.notifications.dedup_window_s)
        seen = session.scalar(
            select(Notification.id)
            .where(
                Notification.user_id == user_id, Notification.dedup_key == dedup_key, Notification.created_at > since
            )
            .limit(1)
        )
        if seen is not None:
            return None
    notification = Notification(
        user_id=user_id,
        severity=severity,
        source=source[:32],
        title=title[:200],
        body=body[:4000],
        link=link,
        dedup_key=dedup_key[:200] if dedup_key else None,
    )
    session.add(notification)
    return notification


def _wants_delivery(session: Session, user_id: int, severity: str) -> bool:
    channels = session.scalars(
        select(NotificationChannel).where(NotificationChannel.user_id == user_id, NotificationChannel.enabled)
    ).all()
    return any(channel.wants(severity) for channel in channels)


def _queue_delivery(notification_id: int) -> None:
    """Hand the delivery to the maintenance queue; no retry here (the caller may be placing an order)."""
    try:
        tasks.send_deliver_notification(notification_id)
    except Exception:  # noqa: BLE001 - redis/kombu transport errors: the record (and the bell) stay
        log.exception("notification_delivery_not_queued", extra={"notification_id": notification_id})
        try:
            with session_scope() as session:
                session.execute(
                    update(Notification)
                    .where(Notification.id == notification_id)
                    .values(
                        delivery="failed", delivery_error="could not be queued for delivery (task queue unreachable)"
                    )
                )
        except SQLAlchemyError:
            log.warning("notification_delivery_state_not_saved", extra={"notification_id": notification_id})


def publish(user_id: int, unread: int, event: dict | None = None) -> None:
    """Tell every open page of the user the new unread count (and what just happened, if anything)."""
    try:
        get_redis().publish(notifications_channel(user_id), json.dumps({"unread": unread, **(event or {})}))
    except Exception:  # noqa: BLE001 - pages poll the count on load; a lost push is not an error
        log.warning("notification_not_published", extra={"user_id": user_id})


# ---- reading ----------------------------------------------------------------------------------------


def unread_count(session: Session, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


def listing(session: Session, user_id: int, filters: Filters, limit: int = 200) -> list[Notification]:
    query = select(Notification).where(Notification.user_id == user_id)
    if filters.severity:
        query = query.where(Notification.severity == filters.severity)
    if filters.source:
        query = query.where(Notification.source == filters.source)
    if filters.unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(session.scalars(query.order_by(Notification.id.desc()).limit(limit)))


def mark_read(user_id: int, notification_ids: list[int] | None = None) -> int:
    """Mark some (or, with None, all) of the user's notifications read; returns the new unread count."""
    with session_scope() as session:
        query = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
        if notification_ids is not None:
            query = query.where(Notification.id.in_(notification_ids))
        session.execute(query.values(read_at=utcnow()))
        unread = unread_count(session, user_id)
    publish(user_id, unread)
    return unread
