"""The size an installation is configured for (config.yaml `limits`): refused beyond, with a clear message."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.infra.config import get_settings
from core.models import Bot, User

# The benches' own accounts (core/*bench*.py) are named so; they are not people using the installation.
BENCH_ACCOUNT_PREFIX = "bench-"


class LimitReached(ValueError):
    """One more active user or running bot than the installation is configured for."""


def check_active_users(session: Session, limit: int | None = None) -> None:
    """Refuse one more active user beyond limits.max_active_users."""
    limit = limit or get_settings().file.limits.max_active_users
    active = session.execute(
        select(func.count())
        .select_from(User)
        .where(User.is_active.is_(True), User.username.not_like(f"{BENCH_ACCOUNT_PREFIX}%"))
    ).scalar_one()
    if active >= limit:
        raise LimitReached(
            f"this installation allows at most {limit} active users ({active} already); "
            f"disable one first or raise limits.max_active_users in config.yaml"
        )


def check_running_bots(session: Session, user_id: int, limit: int | None = None) -> None:
    """Refuse one more running bot beyond limits.max_running_bots_per_user."""
    limit = limit or get_settings().file.limits.max_running_bots_per_user
    running = session.execute(
        select(func.count()).select_from(Bot).where(Bot.user_id == user_id, Bot.state == "running")
    ).scalar_one()
    if running >= limit:
        raise LimitReached(f"you can run at most {limit} bots at once ({running} running); pause one first")
