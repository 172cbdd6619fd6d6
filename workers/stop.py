"""Flatten, and one bot's "Close position", on the `orders` queue: the web hands them over (core/flatten.py);
a flatten leaves a report the page shows, a bot's close shows as the bot's orders.

Running it twice is harmless: a second run finds what the first left (orders already cancelled, positions
already sold) and does only the rest."""

from __future__ import annotations

from celery import shared_task

from core import flatten, tasks
from core.infra.bus import bot_close_pending, get_redis


@shared_task(name=tasks.FLATTEN, acks_late=True)
def flatten_user(user_id: int, broker_ids: list[int] | None) -> list[dict]:
    return [{"broker_id": r.broker_id, "failed": r.failed} for r in flatten.run_and_report(user_id, broker_ids)]


@shared_task(name=tasks.CLOSE_BOT, acks_late=True)
def close_bot(user_id: int, bot_id: int, pause: bool) -> list[int]:
    try:
        return flatten.close_bot(user_id, bot_id, pause=pause).close_orders
    finally:
        get_redis().delete(bot_close_pending(bot_id))  # the web's claim (webapp/bots.close): a new close may go
