"""The bot-tick hook: at each candle close, which bot ticks are due, enqueued once per bot and candle.

The feeds process hands its TickHook in at start-up (the bots' `core.bots.ticks.due_ticks` and a Celery
sender); nothing is looked up by name. Idempotency: a Redis SET NX per idempotency key, so a candle re-seen
after a reconnect or a restart never ticks a bot twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from core.candles.candle import ClosedCandle
from core.infra.bus import bot_tick_claim

log = logging.getLogger(__name__)

TICK_KEY_TTL_S = 3 * 24 * 3600


@dataclass(frozen=True)
class BotTick:
    task_name: str
    args: tuple = ()
    idempotency_key: str = ""  # e.g. f"bot:{bot_id}:{candle.open_time}:{candle.timeframe}"
    kwargs: dict[str, Any] = field(default_factory=dict)


TickProvider = Callable[[ClosedCandle], list[BotTick]]


@dataclass(frozen=True)
class TickHook:
    """What the feeds process does at each candle close, handed in at its start: `due` answers which
    bot ticks are due on a candle, `send_task(name, args=, kwargs=)` sends one."""

    due: TickProvider
    send_task: Callable[..., Any]


def enqueue_due_ticks(candle: ClosedCandle, client: redis.Redis, hook: TickHook) -> list[BotTick]:
    """Enqueue each due tick not enqueued before; returns the ones sent now."""
    sent = []
    for tick in hook.due(candle):
        if not tick.idempotency_key:
            raise ValueError(f"tick {tick.task_name} has no idempotency key")
        claim = bot_tick_claim(tick.idempotency_key)
        if not client.set(claim, "1", nx=True, ex=TICK_KEY_TTL_S):
            continue
        try:
            hook.send_task(tick.task_name, args=list(tick.args), kwargs=tick.kwargs)
        except Exception:
            client.delete(claim)  # not sent: the next sighting of this candle may try again
            raise
        sent.append(tick)
    return sent
