"""The bot-tick hook: at each candle close, which bot ticks are due, enqueued once per bot and candle.

The feeds process hands its TickHook in at start-up (the bots' `core.bots.ticks.due_ticks` and a Celery
sender); nothing is looked up by name. Idempotency: a Redis SET NX per idempotency key, so a candle re-seen
after a reconnect or a restart never ticks a bot twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
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


TickProvider = Callable[[Sequence[ClosedCandle]], list[BotTick]]  # the ticks due on a batch of closes


@dataclass(frozen=True)
class TickHook:
    """What the feeds process does at each candle close, handed in at its start: `due` answers which
    bot ticks are due on a candle, `send_task(name, args=, kwargs=)` sends one."""

    due: TickProvider
    send_task: Callable[..., Any]


def enqueue_due_ticks(candles: Sequence[ClosedCandle], client: redis.Redis, hook: TickHook) -> list[BotTick]:
    """Enqueue each tick due on these closes not enqueued before; returns the ones sent now. One question
    for the closes of a batch (a 3m boundary closes every symbol's 1m and 3m at once), one Redis round
    trip for the claims."""
    due = hook.due(candles)
    if not due:
        return []
    for tick in due:
        if not tick.idempotency_key:
            raise ValueError(f"tick {tick.task_name} has no idempotency key")
    pipe = client.pipeline(transaction=False)
    for tick in due:
        pipe.set(bot_tick_claim(tick.idempotency_key), "1", nx=True, ex=TICK_KEY_TTL_S)
    claimed = [tick for tick, fresh in zip(due, pipe.execute(), strict=True) if fresh]
    sent, unsent, error = [], [], None
    for tick in claimed:
        try:
            hook.send_task(tick.task_name, args=list(tick.args), kwargs=tick.kwargs)
            sent.append(tick)
        except Exception as exc:  # noqa: BLE001 - the broker's transport errors: the others still go
            unsent.append(tick)
            error = error or exc
    if error is not None:
        client.delete(*(bot_tick_claim(tick.idempotency_key) for tick in unsent))  # a later sighting may send them
        raise error
    return sent
