"""A bot's signal source (venue + symbol of the candles its strategy sees, at the bot's timeframe), apart from
its execution broker: choosing it at creation, its health on the bot page, and the stale-source watchdog.

The default source is the heartbeat's stream of the same asset (core.candles.sources.default_source): a bot on
Kraken `XBTUSD` is driven by Binance `BTCUSDT` when Binance is the heartbeat. A source that delivers no candle
for two of the bot's periods is stale: flagged on the page and notified once (the beat's feed watchdog).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.candles.candle import timeframe_ms
from core.candles.source_symbols import UnknownMapping, map_symbol
from core.candles.sources import check_source, default_source, heartbeat
from core.candles.store import load_candles
from core.exchanges.spot.registry import VENUES
from core.infra.db import new_session
from core.models import Bot
from core.notifications import events as notifications

log = logging.getLogger(__name__)

SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{2,20}$")  # a bot's symbol and its source's
STALE_PERIODS = 2


class SourceError(ValueError):
    """A signal source that cannot work; the message is meant for the trader."""


def choose_source(broker_venue: str, symbol: str, venue: str | None, source_symbol: str | None) -> tuple[str, str]:
    """The bot's (source venue, source symbol): what the trader chose, else the same asset on the chosen venue
    (the heartbeat when none), through the symbol table."""
    venue = (venue or "").strip().lower()
    source_symbol = (source_symbol or "").strip().upper()
    if venue and venue not in VENUES:
        raise SourceError(f"signal source venue must be one of {', '.join(sorted(VENUES))}")
    if not source_symbol:
        try:
            return (venue, map_symbol(broker_venue, symbol, venue)) if venue else default_source(broker_venue, symbol)
        except UnknownMapping as exc:
            raise SourceError(f"no signal source found for {symbol}: {exc}") from None
    if not SYMBOL_PATTERN.match(source_symbol):
        raise SourceError(f"signal source symbol {source_symbol!r} is not a symbol like BTCUSDT")
    return venue or heartbeat().venue, source_symbol


@dataclass(frozen=True)
class SourceStatus:
    """What the bot page says about the source."""

    label: str  # "binance BTCUSDT 1m"
    warning: str | None  # not streamed, or stale
    stale: bool
    quiet_minutes: int  # since the last source candle closed (or the bot started, when later)


def source_status(session: Session, bot: Bot, now: float | None = None) -> SourceStatus:
    now_ms = int((now if now is not None else time.time()) * 1000)
    label = f"{bot.source_venue} {bot.source_symbol} {bot.timeframe}"
    period = timeframe_ms(bot.timeframe)
    last = load_candles(session.connection(), bot.source_venue, bot.source_symbol, bot.timeframe, limit=1, newest=True)
    last_close = last[-1].open_time + period if last else None
    check = check_source(bot.source_venue, bot.source_symbol, bot.timeframe)
    since = max(last_close or 0, int(bot.updated_at.timestamp() * 1000))
    quiet = max(0, (now_ms - since) // 60_000)
    stale = bot.state == "running" and now_ms - since > STALE_PERIODS * period
    warning = check.warning
    if stale:
        note = f". {check.warning}" if check.warning else ""
        warning = f"stale source: no {label} candle for {quiet} min (two periods), the bot is not ticking{note}"
    return SourceStatus(label, warning, stale, quiet)


def notify_stale_sources(now: float | None = None) -> list[int]:
    """Notify the owner of every running bot whose source is stale (deduplicated by the notification centre).
    Postgres down: nothing is checked this round (logged), the next one tells."""
    flagged = []
    try:
        with new_session() as session:
            bots = list(session.scalars(select(Bot).where(Bot.state == "running").order_by(Bot.id)))
            stale = [(bot, status) for bot in bots if (status := source_status(session, bot, now)).stale]
    except SQLAlchemyError as exc:
        log.warning("bot_sources_unchecked", extra={"error": str(getattr(exc, "orig", exc))[:200]})
        return []
    for bot, status in stale:
        flagged.append(bot.id)
        log.warning("bot_source_stale", extra={"bot_id": bot.id, "source": status.label})
        notifications.bot_source_stale(bot.user_id, bot.id, status.label, status.quiet_minutes)
    return flagged
