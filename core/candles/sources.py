"""The heartbeat sources: which venues' candles the feeds process streams (config.yaml `feeds`), and what a
bot's signal source defaults to and whether it is streamed.

config.yaml either lists `feeds.sources` (venue, symbols, optional timeframes and URLs; the first is the
heartbeat) or keeps the single-source form `feeds.venue` + `feeds.symbols`: both are read here only.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from core.candles.source_symbols import map_symbol
from core.infra.bus import EXTRA_SYMBOLS, feed_symbols, get_redis
from core.infra.config import Settings, get_settings


@dataclass(frozen=True)
class FeedSource:
    venue: str
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    ws_url: str | None = None
    rest_url: str | None = None


def configured_sources(settings: Settings | None = None) -> list[FeedSource]:
    feeds = (settings or get_settings()).file.feeds
    if not feeds.sources:
        return [FeedSource(feeds.venue, tuple(s.upper() for s in feeds.symbols), tuple(feeds.timeframes))]
    return [
        FeedSource(
            s.venue,
            tuple(symbol.upper() for symbol in s.symbols),
            tuple(s.timeframes or feeds.timeframes),
            s.ws_url,
            s.rest_url,
        )
        for s in feeds.sources
    ]


def heartbeat(settings: Settings | None = None) -> FeedSource:
    return configured_sources(settings)[0]


def follow_key(venue: str, settings: Settings | None = None) -> str:
    """The Redis set of the symbols bots ask a source to stream beyond config.yaml."""
    return EXTRA_SYMBOLS if venue == heartbeat(settings).venue else feed_symbols(venue)


def default_source(broker_venue: str, symbol: str, settings: Settings | None = None) -> tuple[str, str]:
    """The heartbeat's stream of the same asset; the broker's own venue when that is the heartbeat.
    Raises UnknownMapping when the asset is not in the symbol table."""
    venue = heartbeat(settings).venue
    return venue, map_symbol(broker_venue, symbol, venue)


@dataclass(frozen=True)
class SourceCheck:
    streamed: bool
    warning: str | None  # for the bot form and page


def check_source(
    venue: str, symbol: str, timeframe: str, client: redis.Redis | None = None, settings: Settings | None = None
) -> SourceCheck:
    """Whether the feeds process streams this source: configured, or followed on a bot's request."""
    sources = {s.venue: s for s in configured_sources(settings)}
    source = sources.get(venue)
    if source is None:
        names = ", ".join(sources)
        return SourceCheck(False, f"{venue} is not a heartbeat source (feeds in config.yaml: {names}): no candle comes")
    if timeframe not in source.timeframes:
        return SourceCheck(False, f"the {venue} heartbeat does not build {timeframe} candles: the bot never ticks")
    if symbol in source.symbols:
        return SourceCheck(True, None)
    try:
        followed = bool((client or get_redis()).sismember(follow_key(venue, settings), symbol))
    except redis.RedisError:
        followed = False
    if followed:
        return SourceCheck(True, None)
    return SourceCheck(False, f"{symbol} is not streamed from {venue} yet: starting the bot asks the feeds for it")
