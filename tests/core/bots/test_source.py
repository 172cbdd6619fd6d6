"""A bot's signal source: the heartbeat's stream of its asset by default (through the one symbol table), chosen
by hand otherwise; every impossible choice refused with a message; ticks routed by the source's candles; a source
gone quiet for two periods flagged and notified."""

# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.bots import manage
from core.bots.source import notify_stale_sources, source_status
from core.bots.ticks import due_ticks
from core.candles.candle import ClosedCandle
from core.infra.db import new_session, session_scope, utcnow
from core.models import Bot, BrokerConnection, Notification
from core.strategies import store as strategy_store
from tests.core.bots.fixtures import ALWAYS_LONG
from tests.support import remember_secret
from tests.trading_support import make_trader


@pytest.fixture()
def trader(make_user):
    """A user with a Kraken and a Bitget connection (no markets loaded) and a valid strategy version."""
    user, _ = make_user()
    with session_scope() as session:
        ids = {}
        for venue in ("kraken", "bitget"):
            broker = BrokerConnection(user_id=user.id, venue=venue, label=venue, base_url="http://127.0.0.1:9")
            broker.set_credentials(
                remember_secret("k-" + secrets.token_hex(6)), remember_secret("s-" + secrets.token_hex(9))
            )
            session.add(broker)
            session.flush()
            ids[venue] = broker.id
        version = strategy_store.create_strategy(session, user.id, "long", code=ALWAYS_LONG).latest
        session.flush()
        return {"user_id": user.id, "version_id": version.id, **ids}


def _create(trader, venue: str, symbol: str, **source) -> Bot:
    settings = manage.BotSettings(
        name="b" + secrets.token_hex(3),
        strategy_version_id=trader["version_id"],
        broker_id=trader[venue],
        symbol=symbol,
        timeframe="1h",
        **source,
    )
    with session_scope() as session:
        bot = manage.create_bot(session, trader["user_id"], settings)
        session.expunge(bot)
        return bot


@pytest.mark.parametrize(
    ("venue", "symbol", "source", "expected"),
    [
        ("kraken", "XBTUSD", {}, ("sim", "BTCUSDT")),  # the heartbeat (config.yaml: sim) of the same asset
        ("bitget", "ETHUSDT", {}, ("sim", "ETHUSDT")),
        ("kraken", "XBTUSD", {"source_venue": "binance"}, ("binance", "BTCUSDT")),
        ("kraken", "XBTUSD", {"source_venue": "kraken"}, ("kraken", "XBTUSD")),
        ("bitget", "BTCUSDT", {"source_venue": "Bitget", "source_symbol": "ethusdt"}, ("bitget", "ETHUSDT")),
    ],
)
def test_the_source_defaults_to_the_heartbeat_of_the_same_asset(trader, venue, symbol, source, expected):
    bot = _create(trader, venue, symbol, **source)
    assert (bot.venue, bot.symbol) == (venue, symbol) and (bot.source_venue, bot.source_symbol) == expected


@pytest.mark.parametrize(
    ("symbol", "source", "message"),
    [
        ("XRPUSD", {}, "no signal source found for XRPUSD: XRP/USD is not listed on sim"),
        ("ZZZUSD", {}, "ZZZUSD on kraken is not in the symbol table"),
        ("XBTUSD", {"source_venue": "ftx"}, "signal source venue must be one of binance, bitget, kraken, sim"),
        ("XBTUSD", {"source_venue": "sim", "source_symbol": "bad sym"}, "'BAD SYM' is not a symbol like BTCUSDT"),
    ],
)
def test_an_impossible_source_is_refused_at_creation_and_nothing_is_stored(trader, symbol, source, message):
    with pytest.raises(manage.BotError, match=message):
        _create(trader, "kraken", symbol, **source)
    with new_session() as session:
        assert session.scalar(select(Bot.id).where(Bot.user_id == trader["user_id"])) is None


def test_a_symbol_the_broker_does_not_list_is_refused(make_user, sim):
    owner = make_trader(lambda: make_user(), sim)  # its markets are loaded from the simulator
    with session_scope() as session:
        version_id = strategy_store.create_strategy(session, owner.user_id, "long", code=ALWAYS_LONG).latest.id
    settings = manage.BotSettings("x", version_id, owner.broker_id, "XRPUSDT", "1h")
    with session_scope() as session, pytest.raises(manage.BotError, match="does not list XRPUSDT"):
        manage.create_bot(session, owner.user_id, settings)


def _candle(venue: str, symbol: str) -> ClosedCandle:
    price = Decimal(100)
    return ClosedCandle(venue, symbol, "1h", 1_700_006_400_000, price, price, price, price, Decimal(1))


def test_ticks_follow_the_source_not_the_execution_venue_and_a_quiet_source_is_flagged_and_notified(trader):
    bot = _create(trader, "kraken", "XBTUSD", source_venue="kraken", source_symbol="XBTUSDT")
    with session_scope() as session:
        row = session.get(Bot, bot.id)
        manage.start_bot(session, row)
        row.updated_at = utcnow() - timedelta(hours=3)  # started 3 periods ago, no candle since
    try:
        assert bot.id in [t.args[0] for t in due_ticks([_candle("kraken", "XBTUSDT")])]
        assert bot.id not in [t.args[0] for t in due_ticks([_candle("kraken", "XBTUSD")])]
        with new_session() as session:
            status = source_status(session, session.get(Bot, bot.id))
        assert status.stale and status.quiet_minutes >= 180 and status.label == "kraken XBTUSDT 1h"
        assert "stale source" in status.warning and "kraken is not a heartbeat source" in status.warning
        assert bot.id in notify_stale_sources()
        with new_session() as session:
            titles = session.scalars(select(Notification.title).where(Notification.user_id == trader["user_id"])).all()
        assert f"Bot #{bot.id}: no candle from its source kraken XBTUSDT 1h" in titles
        with session_scope() as session:
            session.get(Bot, bot.id).updated_at = utcnow()  # just (re)started: not stale yet
        with new_session() as session:
            assert not source_status(session, session.get(Bot, bot.id)).stale
    finally:
        with session_scope() as session:
            session.get(Bot, bot.id).state = "paused"
