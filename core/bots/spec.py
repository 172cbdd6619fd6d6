"""What one bot tick works from: the bot as read once at the tick's start, and its symbol's trading rules."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.brokers import exchange_for
from core.exchanges.models import SymbolRules
from core.models import BrokerConnection


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


def symbol_rules(session: Session, spec: BotSpec) -> SymbolRules:
    return exchange_for(session.get_one(BrokerConnection, spec.broker_id)).rules(spec.symbol)
