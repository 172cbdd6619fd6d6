"""Which bots tick on a candle close: the `due` half of the feeds process's TickHook (core.candles.ticks)."""

from __future__ import annotations

import time

from sqlalchemy import select

from core import tasks
from core.candles.candle import ClosedCandle
from core.candles.ticks import BotTick
from core.infra.db import new_session
from core.models import Bot


def tick_key(bot_id: int, candle: ClosedCandle) -> str:
    return f"bot:{bot_id}:{candle.timeframe}:{candle.open_time}"


def due_ticks(candle: ClosedCandle) -> list[BotTick]:
    """One tick per running bot on this venue, symbol and timeframe. `issued_ms` lets the worker drop a
    tick that waited in a stalled queue for so long that its decision would trade on an old close."""
    with new_session() as session:
        bot_ids = session.scalars(
            select(Bot.id)
            .where(
                Bot.venue == candle.venue,
                Bot.symbol == candle.symbol,
                Bot.timeframe == candle.timeframe,
                Bot.state == "running",
            )
            .order_by(Bot.id)
        ).all()
    issued_ms = int(time.time() * 1000)
    return [
        BotTick(
            tasks.BOT_TICK,
            args=(bot_id, candle.open_time, candle.timeframe),
            idempotency_key=tick_key(bot_id, candle),
            kwargs={"issued_ms": issued_ms},
        )
        for bot_id in bot_ids
    ]
