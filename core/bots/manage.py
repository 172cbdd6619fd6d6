"""Creating and steering a trader's bots; every call is scoped by the owner's user id."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.bots.source import SYMBOL_PATTERN, SourceError, choose_source
from core.brokers import symbol_rules, symbols_of
from core.candles.sources import follow_key
from core.candles.store import load_candles
from core.infra.bus import bot_close_pending, get_redis
from core.infra.config import TIMEFRAMES
from core.infra.db import utcnow
from core.ledger.positions import Position, bot_position
from core.limits import LimitReached, check_running_bots
from core.models import Bot, BotChange, BotTick, BrokerConnection, Order, StrategyRecord, StrategyVersion, User
from core.orders.states import FINAL_STATES
from core.strategies.store import StrategyParamsInvalid, check_params
from core.strategies.validation import validate_strategy_code

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 64
CANDLES_RANGE = (50, 5000)
TIMEOUT_RANGE = (1, 60)


class BotError(ValueError):
    """A request about a bot that is refused; the message is meant for the trader."""


class BotNotFound(BotError):
    pass


@dataclass(frozen=True)
class BotSettings:
    name: str
    strategy_version_id: int
    broker_id: int
    symbol: str
    timeframe: str
    params: Mapping[str, Any] = field(default_factory=dict)
    candles_needed: int = 500
    timeout_seconds: int = 10
    source_venue: str = ""  # empty: the heartbeat's stream of the same asset (core.bots.source)
    source_symbol: str = ""


def parse_params(text: str) -> dict[str, Any]:
    """The params field of the form: empty, or a JSON object of name -> value."""
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BotError(
            f'parameters must be a JSON object like {{"fast": 10}}: {exc.msg} (line {exc.lineno}, column {exc.colno})'
        ) from None
    if not isinstance(value, dict):
        raise BotError('parameters must be a JSON object like {"fast": 10}')
    return value


def _owned_version(session: Session, user_id: int, version_id: int) -> StrategyVersion:
    version = session.get(StrategyVersion, version_id)
    if version is None or version.strategy.user_id != user_id:
        raise BotError("choose one of your strategy versions")
    if not version.valid:
        raise BotError(f"{version.strategy.name} v{version.number} does not validate; fix it and save a new version")
    return version


def _checked(session: Session, user_id: int, settings: BotSettings) -> tuple[dict, StrategyVersion, BrokerConnection]:
    name = " ".join((settings.name or "").split())
    if not name or len(name) > MAX_NAME_CHARS:
        raise BotError(f"the bot needs a name of 1-{MAX_NAME_CHARS} characters")
    symbol = (settings.symbol or "").strip().upper()
    if not SYMBOL_PATTERN.match(symbol):
        raise BotError(f"symbol {settings.symbol!r} is not a symbol like BTCUSDT")
    if settings.timeframe not in TIMEFRAMES:
        raise BotError(f"timeframe must be one of {', '.join(TIMEFRAMES)}")
    if not CANDLES_RANGE[0] <= settings.candles_needed <= CANDLES_RANGE[1]:
        raise BotError(f"candles per decision must be between {CANDLES_RANGE[0]} and {CANDLES_RANGE[1]}")
    if not TIMEOUT_RANGE[0] <= settings.timeout_seconds <= TIMEOUT_RANGE[1]:
        raise BotError(f"the decision timeout must be between {TIMEOUT_RANGE[0]} and {TIMEOUT_RANGE[1]} seconds")
    broker = session.get(BrokerConnection, settings.broker_id)
    if broker is None or broker.user_id != user_id:
        raise BotError("choose one of your broker connections")
    known = symbols_of(session, broker.id)
    if known and symbol not in known:
        raise BotError(f"{broker.venue} broker {broker.label!r} does not list {symbol}; choose one of its symbols")
    try:
        source_venue, source_symbol = choose_source(broker.venue, symbol, settings.source_venue, settings.source_symbol)
    except SourceError as exc:
        raise BotError(str(exc)) from None
    version = _owned_version(session, user_id, settings.strategy_version_id)
    defaults = validate_strategy_code(version.code).params
    try:
        params = check_params(defaults, settings.params)
    except StrategyParamsInvalid as exc:
        raise BotError(f"parameters: {exc}") from None
    values = {
        "name": name,
        "symbol": symbol,
        "timeframe": settings.timeframe,
        "params": params,
        "candles_needed": settings.candles_needed,
        "timeout_seconds": settings.timeout_seconds,
        "source_venue": source_venue,
        "source_symbol": source_symbol,
    }
    return values, version, broker


def _ensure_name_free(session: Session, user_id: int, name: str) -> None:
    if session.scalar(select(Bot.id).where(Bot.user_id == user_id, Bot.name == name)) is not None:
        raise BotError(f"you already have a bot named {name!r}")


def create_bot(session: Session, user_id: int, settings: BotSettings) -> Bot:
    """A new bot, paused: it trades only once started."""
    values, version, broker = _checked(session, user_id, settings)
    _ensure_name_free(session, user_id, values["name"])
    bot = Bot(
        user_id=user_id,
        strategy_version_id=version.id,
        broker_id=broker.id,
        venue=broker.venue,
        state="paused",
        **values,
    )
    session.add(bot)
    session.flush()
    log.info(
        "bot_created",
        extra={
            "user_id": user_id,
            "bot_id": bot.id,
            "symbol": bot.symbol,
            "timeframe": bot.timeframe,
            "source": f"{bot.source_venue}:{bot.source_symbol}",
            "strategy_version_id": version.id,
        },
    )
    return bot


def list_bots(session: Session, user_id: int) -> list[Bot]:
    return list(session.scalars(select(Bot).where(Bot.user_id == user_id).order_by(Bot.name)))


def get_bot(session: Session, user_id: int, bot_id: int) -> Bot:
    """The user's bot; someone else's is simply not found."""
    bot = session.get(Bot, bot_id)
    if bot is None or bot.user_id != user_id:
        raise BotNotFound(f"bot {bot_id} not found")
    return bot


def _follow_symbol(bot: Bot, client: redis.Redis | None = None) -> None:
    """Ask the feeds process to stream the bot's source symbol (it adds new members without a restart)."""
    try:
        (client or get_redis()).sadd(follow_key(bot.source_venue), bot.source_symbol)
    except redis.RedisError as exc:
        log.warning("bot_symbol_not_followed", extra={"bot_id": bot.id, "symbol": bot.source_symbol, "error": str(exc)})


def start_bot(session: Session, bot: Bot) -> None:
    """Run from the next candle close on (also resumes a bot paused by the trader or by an error)."""
    if bot.strategy_version_id is None:
        raise BotError("the bot's strategy was deleted; create a new bot with another strategy")
    _owned_version(session, bot.user_id, bot.strategy_version_id)
    if bot.state != "running":
        try:
            check_running_bots(session, bot.user_id)
        except LimitReached as exc:
            raise BotError(str(exc)) from None
    bot.state, bot.last_error = "running", None
    bot.updated_at = utcnow()
    _follow_symbol(bot)
    log.info("bot_started", extra={"user_id": bot.user_id, "bot_id": bot.id})


resume_bot = start_bot


def pause_bot(session: Session, bot: Bot, error: dict | None = None, *, state: str = "paused") -> None:
    """Stop acting on candle closes. Open orders and the position stay as they are at the venue."""
    bot.state = state
    if error is not None:
        bot.last_error = error
    bot.updated_at = utcnow()
    log.info(
        "bot_paused",
        extra={"user_id": bot.user_id, "bot_id": bot.id, "state": state, "error_type": (error or {}).get("type")},
    )


def delete_bot(session: Session, bot: Bot) -> None:
    """Only a stopped bot can go; its orders and fills stay in the trading history."""
    if bot.state == "running":
        raise BotError("pause the bot before deleting it")
    log.info("bot_deleted", extra={"user_id": bot.user_id, "bot_id": bot.id})
    session.delete(bot)
    session.flush()


# ---- editing a stopped bot ----------------------------------------------------------------------

# What an edit may change, in the order the history lists it (`venue` follows the broker).
EDITABLE = (
    "name",
    "strategy_version_id",
    "params",
    "broker_id",
    "symbol",
    "timeframe",
    "source_venue",
    "source_symbol",
    "candles_needed",
    "timeout_seconds",
)


def _unfinished_reason(session: Session, bot: Bot) -> str | None:
    """Why the bot's orders are not settled, if they are not: an edit then waits (a tick must never act on
    an order placed under other settings)."""
    order = session.scalar(
        select(Order)
        .where(
            Order.source == "bot",
            Order.source_ref == bot.source_ref,
            Order.state.not_in([s.value for s in FINAL_STATES]),
        )
        .order_by(Order.id)
        .limit(1)
    )
    if order is not None:
        return (
            f"its {order.type} {order.side} order #{order.id} is {order.state.replace('_', ' ')}: wait until it is "
            "filled or cancel it (Close position cancels the bot's orders)"
        )
    if bot.pending_protection:
        return "its entry's stop-loss/take-profit are waiting to be placed"
    try:
        closing = get_redis().exists(bot_close_pending(bot.id))
    except redis.RedisError:
        return "whether a close is under way cannot be checked now (Redis is unreachable); try again in a moment"
    return "a close of its position is under way" if closing else None


def _settings_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[dict, dict]:
    """Only what changed; a parameter by its name, absent on the side where it took the version's default."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key in EDITABLE:
        if key == "params":
            names = [n for n in {**old[key], **new[key]} if old[key].get(n, ...) != new[key].get(n, ...)]
            if names:
                before[key] = {n: old[key][n] for n in names if n in old[key]}
                after[key] = {n: new[key][n] for n in names if n in new[key]}
        elif old[key] != new[key]:
            before[key], after[key] = old[key], new[key]
    return before, after


def edit_bot(session: Session, user_id: int, bot_id: int, settings: BotSettings) -> BotChange | None:
    """New settings for a bot that is not running, checked like a new bot's; the change recorded with only the
    fields that changed (None: nothing did). Refused while it runs or while one of its orders is unfinished."""
    # Locked and read afresh: a start waits for the edit, and an edit never acts on a state read before a start.
    bot = session.scalar(
        select(Bot).where(Bot.id == bot_id).with_for_update().execution_options(populate_existing=True)
    )
    if bot is None or bot.user_id != user_id:
        raise BotNotFound(f"bot {bot_id} not found")
    if bot.state == "running":
        raise BotError("pause the bot before editing it: a running bot keeps the settings it started with")
    reason = _unfinished_reason(session, bot)
    if reason:
        raise BotError(f"the bot cannot be edited now: {reason}")
    values, version, broker = _checked(session, user_id, settings)
    new = values | {"strategy_version_id": version.id, "broker_id": broker.id}
    old = {key: getattr(bot, key) for key in EDITABLE} | {"params": dict(bot.params or {})}
    before, after = _settings_diff(old, new)
    if not after and not before:
        return None
    if "name" in after:
        _ensure_name_free(session, user_id, new["name"])
    if {"broker_id", "symbol"} & after.keys() and bot_position(session, bot.id, bot.symbol).quantity > 0:
        raise BotError(
            f"the bot holds {bot.symbol} on its broker: close its position before moving it to another broker or symbol"
        )
    for key in EDITABLE:
        setattr(bot, key, new[key])
    bot.venue = broker.venue
    bot.updated_at = utcnow()
    change = BotChange(bot_id=bot.id, user_id=user_id, before=before, after=after)
    session.add(change)
    session.flush()
    log.info("bot_edited", extra={"user_id": user_id, "bot_id": bot.id, "fields": sorted(after.keys() | before.keys())})
    return change


# ---- what the pages show ------------------------------------------------------------------------


def version_choices(session: Session, user_id: int) -> list[tuple[int, str]]:
    """Every valid version of the user's strategies, newest first within a strategy."""
    rows = session.execute(
        select(StrategyVersion.id, StrategyRecord.name, StrategyVersion.number)
        .join(StrategyRecord)
        .where(StrategyRecord.user_id == user_id, StrategyVersion.valid.is_(True))
        .order_by(StrategyRecord.name, StrategyVersion.number.desc())
    )
    return [(version_id, f"{name} v{number}") for version_id, name, number in rows]


def recent_ticks(session: Session, bot_id: int, limit: int = 50) -> list[BotTick]:
    return list(
        session.scalars(
            select(BotTick).where(BotTick.bot_id == bot_id).order_by(BotTick.candle_time.desc()).limit(limit)
        )
    )


def bot_orders(session: Session, bot_id: int, limit: int = 100) -> list[Order]:
    return list(
        session.scalars(
            select(Order)
            .where(Order.source == "bot", Order.source_ref == str(bot_id))
            .order_by(Order.id.desc())
            .limit(limit)
        )
    )


FIELD_WORDS = {
    "name": "name",
    "strategy_version_id": "strategy",
    "broker_id": "broker",
    "symbol": "symbol",
    "timeframe": "timeframe",
    "source_venue": "signal source venue",
    "source_symbol": "signal source symbol",
    "candles_needed": "candles per decision",
    "timeout_seconds": "decision timeout (s)",
}


@dataclass(frozen=True)
class ChangeLine:
    """One recorded edit in words: ("size 0.01 -> 0.02", ...) by whom, when."""

    at: datetime
    by: str
    changes: tuple[str, ...]


def _words(value: Any) -> str:
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value)


def change_history(session: Session, bot: Bot, limit: int = 50) -> list[ChangeLine]:
    """The bot's recorded edits, newest first; versions and brokers by their names."""
    rows = session.execute(
        select(BotChange, User.username)
        .join(User, User.id == BotChange.user_id)
        .where(BotChange.bot_id == bot.id)
        .order_by(BotChange.id.desc())
        .limit(limit)
    ).all()
    ids = {
        k: {v for c, _ in rows for side in (c.before, c.after) if (v := side.get(k)) is not None} for k in FIELD_WORDS
    }
    names: dict[str, dict[Any, str]] = {
        "strategy_version_id": {
            v.id: f"{v.strategy.name} v{v.number}"
            for v in session.scalars(select(StrategyVersion).where(StrategyVersion.id.in_(ids["strategy_version_id"])))
        },
        "broker_id": {
            b.id: f"{b.label} ({b.venue})"
            for b in session.scalars(select(BrokerConnection).where(BrokerConnection.id.in_(ids["broker_id"])))
        },
    }
    lines = []
    for change, username in rows:
        words = []
        for key in EDITABLE:
            if key == "params" and key in change.after:
                old, new = change.before.get(key, {}), change.after[key]
                for name in sorted(old.keys() | new.keys()):
                    words.append(
                        f"{name} {_words(old[name]) if name in old else 'default'} -> "
                        f"{_words(new[name]) if name in new else 'default'}"
                    )
            elif key in change.after:
                label = names.get(key, {})
                old, new = change.before.get(key), change.after[key]
                words.append(f"{FIELD_WORDS[key]} {label.get(old) or _words(old)} -> {label.get(new) or _words(new)}")
        lines.append(ChangeLine(change.at, username, tuple(words)))
    return lines


@dataclass(frozen=True)
class BotSummary:
    """Position and P&L for the bot page, valued at the last stored close (no venue call on a page view)."""

    position: Position
    base: str
    quote: str
    mark_price: Decimal | None
    unrealized_pnl: Decimal | None


def _assets(session: Session, bot: Bot) -> tuple[str, str]:
    rules = symbol_rules(session, bot.broker_id, bot.symbol)
    if rules is not None:
        return rules.base, rules.quote
    for quote in ("USDT", "USDC", "FDUSD", "BTC", "EUR", "USD"):
        if bot.symbol.endswith(quote) and len(bot.symbol) > len(quote):
            return bot.symbol[: -len(quote)], quote
    return bot.symbol, ""


def bot_summary(session: Session, bot: Bot) -> BotSummary:
    base, quote = _assets(session, bot)
    position = bot_position(session, bot.id, bot.symbol)
    # Valued at the source's last close: the same asset, and what the feeds store.
    last = load_candles(session.connection(), bot.source_venue, bot.source_symbol, bot.timeframe, limit=1, newest=True)
    mark = last[-1].close if last else None
    return BotSummary(position, base, quote, mark, position.unrealized_pnl(mark))
