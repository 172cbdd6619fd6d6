"""What one bot tick works from: the bot as read once at the tick's start, and its symbol's trading rules."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.brokers import exchange_for
from core.exchanges.models import SymbolRules
from core.models import Bot, BrokerConnection, StrategyVersion


@dataclass(frozen=True)
class BotSpec:
    """What one tick needs of a bot, read once at its start."""

    bot_id: int
    user_id: int
    broker_id: int
    venue: str
    symbol: str
    timeframe: str
    version_id: int
    code: str
    params: dict
    candles_needed: int
    timeout_seconds: int
    source_venue: str  # whose candles the strategy sees (venue/symbol above: where it trades)
    source_symbol: str


def symbol_rules(session: Session, spec: BotSpec) -> SymbolRules:
    return exchange_for(session.get_one(BrokerConnection, spec.broker_id)).rules(spec.symbol)


def spec_of(bot: Bot, version: StrategyVersion | None) -> BotSpec:
    """The spec of a bot and its pinned version (none: deleted; the tick stops the bot with that error)."""
    return BotSpec(
        bot.id,
        bot.user_id,
        bot.broker_id,
        bot.venue,
        bot.symbol,
        bot.timeframe,
        version.id if version else 0,
        version.code if version else "",
        {**(version.params or {}), **(bot.params or {})} if version else {},
        bot.candles_needed,
        bot.timeout_seconds,
        bot.source_venue,
        bot.source_symbol,
    )


def running_specs(session: Session) -> list[BotSpec]:
    """The specs of the running bots whose strategy version exists (what a bots worker warms at its start)."""
    rows = session.execute(
        select(Bot, StrategyVersion)
        .join(StrategyVersion, StrategyVersion.id == Bot.strategy_version_id)
        .where(Bot.state == "running")
        .order_by(Bot.id)
    ).all()
    return [spec_of(bot, version) for bot, version in rows]
