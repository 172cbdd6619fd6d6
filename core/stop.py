"""A trader's automation stopped at once: pause all, a disabled user, the orders a flatten cancels."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.bots.manage import pause_bot
from core.models import Bot, Order, Webhook
from core.orders.states import FINAL_STATES
from core.webhooks.setup import pause_webhook

log = logging.getLogger(__name__)

PAUSED_BY_TRADER = "paused by the trader's pause all"
PAUSED_USER_DISABLED = "paused: the user was disabled by an administrator"
FINAL = tuple(state.value for state in FINAL_STATES)


@dataclass(frozen=True)
class PauseReport:
    bots: int
    webhooks: int

    def __str__(self) -> str:
        return f"paused {self.bots} bot(s) and {self.webhooks} webhook(s)"


def pause_all(
    session: Session, user_id: int, reason: str = PAUSED_BY_TRADER, broker_ids: Iterable[int] | None = None
) -> PauseReport:
    """Pause every running bot and every active webhook of the user (on `broker_ids` only, when given).
    A paused webhook still stores each alert it receives and refuses it with "paused: <reason>"."""
    bots = select(Bot).where(Bot.user_id == user_id, Bot.state == "running").with_for_update()
    hooks = select(Webhook).where(Webhook.user_id == user_id, Webhook.paused.is_(False)).with_for_update()
    if broker_ids is not None:
        ids = list(broker_ids)
        bots, hooks = bots.where(Bot.broker_id.in_(ids)), hooks.where(Webhook.broker_id.in_(ids))
    paused_bots = list(session.scalars(bots))
    for bot in paused_bots:
        pause_bot(session, bot)
    paused_hooks = list(session.scalars(hooks))
    for webhook in paused_hooks:
        pause_webhook(webhook, reason)
    session.flush()
    report = PauseReport(len(paused_bots), len(paused_hooks))
    log.warning(
        "automation_paused",
        extra={"user_id": user_id, "bots": report.bots, "webhooks": report.webhooks, "reason": reason},
    )
    return report


def open_orders(session: Session, user_id: int, broker_ids: Iterable[int] | None = None) -> list[Order]:
    """Every order of the user not in a final state (new, sent, open, partially filled, unknown)."""
    query = select(Order).where(Order.user_id == user_id, Order.state.not_in(FINAL)).order_by(Order.id)
    if broker_ids is not None:
        query = query.where(Order.broker_id.in_(list(broker_ids)))
    return list(session.scalars(query))
