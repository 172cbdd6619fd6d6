"""How long an order stays worth placing: the limit on its wait for a venue's request budget.

A webhook order (and the protection of its filled entry) lives as long as an alert stays fresh
(webhooks.max_alert_age_s), a bot's order until its candle's successor closes (the bot decides again
then), anything else (manual orders, cancels) for orders.manual_max_wait_s. Counted from the order's
creation, i.e. from when the alert was processed: a worker backlog does not shorten it, only the wait
for the venue's budget is bounded by it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.infra.config import get_settings
from core.infra.db import utcnow
from core.models import Bot, Order
from core.webhooks.cadence import timeframe_seconds


@lru_cache(maxsize=1)
def _bounds() -> tuple[int, int]:
    """(webhook, manual) seconds; read once per process, like the rest of config.yaml."""
    file = get_settings().file
    return file.webhooks.max_alert_age_s, file.orders.manual_max_wait_s


def manual_wait_s() -> int:
    return _bounds()[1]


def useful_life_s(session: Session, order: Order) -> int:
    webhook_s, manual_s = _bounds()
    if order.source == "webhook":
        return webhook_s
    if order.source == "bot" and order.source_ref and order.source_ref.isdigit():
        timeframe = session.scalar(select(Bot.timeframe).where(Bot.id == int(order.source_ref)))
        if timeframe:
            return timeframe_seconds(timeframe)
    return manual_s


def useful_life_end(session: Session, order: Order, *, since: datetime | None = None) -> float:
    """Epoch seconds past which the order is no longer placed (it ends `expired` instead). `since`: when it
    became due, if not at its creation (an emulated trailing stop, when the price crossed its trail)."""
    created = since or order.created_at or utcnow()  # not flushed yet: it is being created now
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    return created.timestamp() + useful_life_s(session, order)
