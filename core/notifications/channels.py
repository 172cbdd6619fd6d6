"""A user's outbound channels (Apprise URLs): add, change, remove, send a test."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.infra.db import session_scope, utcnow
from core.models import NotificationChannel
from core.models.notifications import SEVERITIES
from core.notifications.apprise_send import InvalidAppriseUrl, send, service

MAX_CHANNELS_PER_USER = 10


class InvalidChannel(ValueError):
    """A clear line for the settings page."""


@dataclass(frozen=True)
class NewChannel:
    label: str
    url: str
    min_severity: str = "warning"


@dataclass(frozen=True)
class TestOutcome:
    label: str
    ok: bool
    error: str | None = None


def for_user(session: Session, user_id: int) -> list[NotificationChannel]:
    return list(
        session.scalars(
            select(NotificationChannel).where(NotificationChannel.user_id == user_id).order_by(NotificationChannel.id)
        )
    )


def add(user_id: int, new: NewChannel) -> int:
    label = new.label.strip()
    if not 1 <= len(label) <= 64:
        raise InvalidChannel("give the channel a label (1 to 64 characters)")
    _check_severity(new.min_severity)
    try:
        service(new.url)
    except InvalidAppriseUrl as exc:
        raise InvalidChannel(str(exc)) from None
    with session_scope() as session:
        if len(for_user(session, user_id)) >= MAX_CHANNELS_PER_USER:
            raise InvalidChannel(f"at most {MAX_CHANNELS_PER_USER} channels per user")
        channel = NotificationChannel(user_id=user_id, label=label, min_severity=new.min_severity, enabled=True)
        channel.set_url(new.url.strip())
        session.add(channel)
        session.flush()
        return channel.id


def update(user_id: int, channel_id: int, min_severity: str, enabled: bool) -> None:
    with session_scope() as session:
        channel = _owned(session, user_id, channel_id)  # someone else's: not found, whatever the form says
        _check_severity(min_severity)
        channel.min_severity, channel.enabled = min_severity, enabled


def remove(user_id: int, channel_id: int) -> None:
    with session_scope() as session:
        session.delete(_owned(session, user_id, channel_id))


def send_test(user_id: int, channel_id: int) -> TestOutcome:
    """Send a test message through one channel now; its outcome is recorded on the channel."""
    with session_scope() as session:
        channel = _owned(session, user_id, channel_id)
        label, url = channel.label, channel.url()
    result = send(url, "Aristobot test", "This channel receives your Aristobot notifications.", "info")
    record_attempt(channel_id, result.error)
    return TestOutcome(label, result.ok, result.error)


def record_attempt(channel_id: int, error: str | None) -> None:
    with session_scope() as session:
        channel = session.get(NotificationChannel, channel_id)
        if channel is not None:
            channel.last_attempt_at, channel.last_error = utcnow(), error


def _owned(session: Session, user_id: int, channel_id: int) -> NotificationChannel:
    channel = session.get(NotificationChannel, channel_id)
    if channel is None or channel.user_id != user_id:
        raise LookupError(f"no channel {channel_id} for this user")
    return channel


def _check_severity(severity: str) -> None:
    if severity not in SEVERITIES:
        raise InvalidChannel(f"minimum severity must be one of {', '.join(SEVERITIES)}")
