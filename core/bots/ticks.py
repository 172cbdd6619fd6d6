"""Which bots tick on a candle close: the `due` half of the feeds process's TickHook (core.candles.ticks)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import select, tuple_

from core import tasks
from core.candles.candle import ClosedCandle
from core.candles.ticks import BotTick
from core.infra.db import new_session
from core.models import Bot


def tick_key(bot_id: int, candle: ClosedCandle) -> str:
    return f"bot:{bot_id}:{candle.timeframe}:{candle.open_time}"


def due_ticks(candles: Sequence[ClosedCandle]) -> list[BotTick]:
    """One tick per running bot whose signal source is a closed candle's venue, symbol and timeframe, for
    every candle of a batch, in one query. `issued_ms` lets the worker drop a tick that waited in a stalled
    queue for so long that its decision would trade on an old close."""
    markets = {(candle.venue, candle.symbol, candle.timeframe) for candle in candles}
    if not markets:
        return []
    with new_session() as session:
        rows = session.execute(
            select(Bot.id, Bot.source_venue, Bot.source_symbol, Bot.timeframe)
            .where(tuple_(Bot.source_venue, Bot.source_symbol, Bot.timeframe).in_(markets), Bot.state == "running")
            .order_by(Bot.id)
        ).all()
    bots: dict[tuple[str, str, str], list[int]] = {}
    for bot_id, venue, symbol, timeframe in rows:
        bots.setdefault((venue, symbol, timeframe), []).append(bot_id)
    issued_ms = int(time.time() * 1000)
    return [
        BotTick(
            tasks.BOT_TICK,
            args=(bot_id, candle.open_time, candle.timeframe),
            idempotency_key=tick_key(bot_id, candle),
            kwargs={"issued_ms": issued_ms},
        )
        for candle in candles
        for bot_id in bots.get((candle.venue, candle.symbol, candle.timeframe), [])
    ]
