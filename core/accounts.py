"""User accounts: created by an admin only (no open sign-up)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.infra.db import utcnow
from core.limits import LimitReached, check_active_users
from core.models import User
from core.stop import PAUSED_USER_DISABLED, PauseReport, pause_all

MIN_PASSWORD_LENGTH = 10


class AccountError(ValueError):
    pass


def _check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def create_user(
    session: Session, username: str, password: str, *, is_admin: bool = False, within_limits: bool = True
) -> User:
    """A new active user. `within_limits=False` only for the benches' own accounts, which are not traders
    of the installation (limits.max_active_users counts the people using it)."""
    username = username.strip()
    if not (3 <= len(username) <= 64) or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise AccountError("username must be 3-64 letters, digits, '.', '_' or '-'")
    if session.scalar(select(User).where(User.username == username)):
        raise AccountError(f"user {username!r} already exists")
    _check_password_strength(password)
    if within_limits:
        _check_limit(session)
    user = User(username=username, is_admin=is_admin)
    user.set_password(password)
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username.strip()))


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = find_user(session, username)
    if user is None or not user.is_active or not user.check_password(password):
        return None
    user.last_login_at = utcnow()
    return user


def change_password(user: User, current: str, new: str) -> None:
    if not user.check_password(current):
        raise AccountError("current password is wrong")
    _check_password_strength(new)
    user.set_password(new)


def _check_limit(session: Session) -> None:
    try:
        check_active_users(session)
    except LimitReached as exc:
        raise AccountError(str(exc)) from None


def set_active(session: Session, username: str, active: bool) -> tuple[User, PauseReport | None]:
    """Enable or disable a user. Disabling also pauses every bot and webhook of theirs at once (their
    automation stops trading, not only their logins); the caller decides about their open orders."""
    user = find_user(session, username)
    if user is None:
        raise AccountError(f"no user {username!r}")
    if active and not user.is_active:
        _check_limit(session)
    user.is_active = active  # a change ends the user's sessions (core/models/users.py)
    paused = None if active else pause_all(session, user.id, PAUSED_USER_DISABLED)
    return user, paused


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))
