"""Running bots in `aristobot bench chaos`: flip bots (bench/bots.py's strategy: every tick of every bot sends
one market order) on symbols the stack's feeds stream, trading on the chaos connection, so their orders are in
the venue's duplicate check with the manual and webhook ones.

At the end, for every candle close of the run and every bot:
- missing: no recorded decision (the tick was lost; a killed worker's tick is put back at its restart,
  workers/recovery.py, and a redelivered one finds its tick row and places nothing);
- skipped: a recorded decision not to trade, by reason (e.g. a tick that waited in a stalled queue past its
  candle's useful life; numbers in the reason are replaced by N);
- duplicated: a bot order the venue executed more than once is counted with the other orders."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.bots import start_flip_bots
from core.candles.candle import timeframe_ms
from core.infra.db import new_session
from core.models import BotTick

SYMBOLS = ("BTCUSDT", "ETHUSDT")  # streamed by the stack's feeds (config.yaml feeds.symbols)
TIMEFRAME = "1m"
SETTLE_MS = 30_000  # a close later than this before the end may not be decided yet: not counted


@dataclass
class BotVerdict:
    bots: int
    ticks_expected: int
    ticks_missing: int
    ticks_traded: int
    ticks_skipped: dict[str, int] = field(default_factory=dict)


def start_bots(session: Session, user_id: int, broker_id: int) -> list[int]:
    return start_flip_bots(session, user_id, broker_id, "chaos", [(symbol, TIMEFRAME) for symbol in SYMBOLS])


def closes(started_ms: int, ended_ms: int) -> list[int]:
    """Open times of the candles that closed within the run (and early enough to be decided by its end)."""
    span = timeframe_ms(TIMEFRAME)
    first_open = -(-started_ms // span) * span  # the first candle that opened after the bots started
    return list(range(first_open, ended_ms - SETTLE_MS - span + 1, span))


def verdict(bot_ids: list[int], started_ms: int, ended_ms: int) -> BotVerdict:
    expected = {(bot_id, candle) for bot_id in bot_ids for candle in closes(started_ms, ended_ms)}
    with new_session() as session:
        rows = session.execute(
            select(BotTick.bot_id, BotTick.candle_time, BotTick.action, BotTick.note).where(BotTick.bot_id.in_(bot_ids))
        ).all()
    decided = {
        (bot_id, candle): (action, note) for bot_id, candle, action, note in rows if (bot_id, candle) in expected
    }
    skipped = Counter(
        f"{action}: {re.sub(r'[#0-9]+', 'N', note)}" for action, note in decided.values() if action in ("skip", "error")
    )
    return BotVerdict(
        bots=len(bot_ids),
        ticks_expected=len(expected),
        ticks_missing=len(expected - decided.keys()),
        ticks_traded=sum(1 for action, _ in decided.values() if action in ("enter", "exit")),
        ticks_skipped=dict(skipped),
    )
