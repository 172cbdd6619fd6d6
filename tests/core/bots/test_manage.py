"""Creating and steering bots: every bad input is refused with a message and stores nothing."""

# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
from __future__ import annotations

import secrets

import pytest
from sqlalchemy import func, select

from core import tasks
from core.bots import manage
from core.bots.ticks import due_ticks
from core.candles.candle import ClosedCandle
from core.infra.bus import EXTRA_SYMBOLS
from core.infra.db import new_session, session_scope
from core.models import Bot, BrokerConnection, StrategyVersion
from core.strategies import store as strategy_store
from tests.core.bots.fixtures import ALWAYS_LONG
from tests.support import remember_secret


@pytest.fixture()
def owner(make_user):
    """A user with a broker connection and a valid and an invalid strategy version."""
    user, _ = make_user()
    with session_scope() as session:
        broker = BrokerConnection(user_id=user.id, venue="sim", label="b", base_url="http://127.0.0.1:9")
        broker.set_credentials(
            remember_secret("k-" + secrets.token_hex(6)), remember_secret("s-" + secrets.token_hex(9))
        )
        session.add(broker)
        good = strategy_store.create_strategy(session, user.id, "good", code=ALWAYS_LONG).latest
        bad = strategy_store.create_strategy(session, user.id, "bad", code="class X:\n    pass\n").latest
        session.flush()
        return {"user_id": user.id, "broker_id": broker.id, "version_id": good.id, "invalid_version_id": bad.id}


def _settings(owner, **changes) -> manage.BotSettings:
    values = {
        "name": "trend",
        "strategy_version_id": owner["version_id"],
        "broker_id": owner["broker_id"],
        "symbol": "btcusdt",
        "timeframe": "1h",
        "params": {"size": "0.5"},
    } | changes
    return manage.BotSettings(**values)


def _count(user_id: int) -> int:
    with new_session() as session:
        return session.scalar(select(func.count()).select_from(Bot).where(Bot.user_id == user_id))


def test_a_new_bot_is_paused_with_its_symbol_upper_cased_and_params_typed(owner):
    with session_scope() as session:
        bot = manage.create_bot(session, owner["user_id"], _settings(owner))
        assert (bot.state, bot.symbol, bot.venue, bot.params) == ("paused", "BTCUSDT", "sim", {"size": 0.5})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "  "}, "needs a name"),
        ({"name": "x" * 65}, "needs a name"),
        ({"symbol": "BTC/USDT"}, "not a symbol"),
        ({"symbol": ""}, "not a symbol"),
        ({"timeframe": "2h"}, "timeframe must be one of"),
        ({"params": {"nope": 1}}, "unknown parameter"),
        ({"params": {"size": "big"}}, "must be a number"),
        ({"candles_needed": 10}, "candles per decision"),
        ({"timeout_seconds": 0}, "timeout"),
        ({"timeout_seconds": 61}, "timeout"),
        ({"broker_id": 10**9}, "your broker"),
        ({"strategy_version_id": 10**9}, "your strategy versions"),
    ],
)
def test_bad_settings_are_refused_and_nothing_is_stored(owner, changes, message):
    with pytest.raises(manage.BotError, match=message), session_scope() as session:
        manage.create_bot(session, owner["user_id"], _settings(owner, **changes))
    assert _count(owner["user_id"]) == 0


def test_an_invalid_strategy_version_cannot_run(owner):
    with pytest.raises(manage.BotError, match="does not validate"), session_scope() as session:
        manage.create_bot(session, owner["user_id"], _settings(owner, strategy_version_id=owner["invalid_version_id"]))


def test_another_users_broker_and_strategy_are_not_usable(owner, make_user):
    other, _ = make_user()
    for changes in ({}, {"broker_id": owner["broker_id"]}):
        with pytest.raises(manage.BotError), session_scope() as session:
            manage.create_bot(session, other.id, _settings(owner, **changes))
    assert _count(other.id) == 0


def test_names_are_unique_per_user(owner):
    with session_scope() as session:
        manage.create_bot(session, owner["user_id"], _settings(owner))
    with pytest.raises(manage.BotError, match="already have a bot"), session_scope() as session:
        manage.create_bot(session, owner["user_id"], _settings(owner))


@pytest.mark.parametrize(("text", "message"), [("[1, 2]", "JSON object"), ("{size: 1}", "line 1")])
def test_params_text_must_be_a_json_object(text, message):
    with pytest.raises(manage.BotError, match=message):
        manage.parse_params(text)
    assert manage.parse_params("  ") == {} and manage.parse_params('{"size": 0.2}') == {"size": 0.2}


def test_someone_elses_bot_is_not_found(owner, make_user):
    other, _ = make_user()
    with session_scope() as session:
        bot_id = manage.create_bot(session, owner["user_id"], _settings(owner)).id
    with pytest.raises(manage.BotNotFound), new_session() as session:
        manage.get_bot(session, other.id, bot_id)


def test_start_follows_the_symbol_and_the_feed_hook_ticks_only_running_bots(owner, redis_client):
    with session_scope() as session:
        bot = manage.create_bot(session, owner["user_id"], _settings(owner, symbol="ZZBOTUSDT"))
        bot_id = bot.id
    candle = ClosedCandle("sim", "ZZBOTUSDT", "1h", 1_700_000_000_000, *(1,) * 5)
    assert due_ticks([candle]) == []
    with session_scope() as session:
        manage.start_bot(session, manage.get_bot(session, owner["user_id"], bot_id))
    assert redis_client.sismember(EXTRA_SYMBOLS, "ZZBOTUSDT")
    [tick] = due_ticks([candle])
    assert tick.task_name == tasks.BOT_TICK and tick.args == (bot_id, candle.open_time, "1h")
    assert tick.idempotency_key == f"bot:{bot_id}:1h:{candle.open_time}"
    assert due_ticks([ClosedCandle("sim", "ZZBOTUSDT", "4h", 1_700_000_000_000, *(1,) * 5)]) == []
    with session_scope() as session:
        bot = manage.get_bot(session, owner["user_id"], bot_id)
        with pytest.raises(manage.BotError, match="pause the bot"):
            manage.delete_bot(session, bot)
        manage.pause_bot(session, bot)
    assert due_ticks([candle]) == []
    with session_scope() as session:
        manage.delete_bot(session, manage.get_bot(session, owner["user_id"], bot_id))
    assert _count(owner["user_id"]) == 0


def test_a_bot_whose_strategy_was_deleted_cannot_start(owner):
    with session_scope() as session:
        bot_id = manage.create_bot(session, owner["user_id"], _settings(owner)).id
        strategy_store.delete_strategy(session, session.get(StrategyVersion, owner["version_id"]).strategy)
    with pytest.raises(manage.BotError, match="strategy was deleted"), session_scope() as session:
        manage.start_bot(session, manage.get_bot(session, owner["user_id"], bot_id))
