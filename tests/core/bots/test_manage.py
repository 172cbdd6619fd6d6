"""Creating and steering bots: every bad input is refused with a message and stores nothing."""

# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core import tasks
from core.bots import manage
from core.bots.ticks import due_ticks
from core.candles.candle import ClosedCandle
from core.infra.bus import EXTRA_SYMBOLS, bot_close_pending
from core.infra.db import new_session, session_scope
from core.models import Bot, BotChange, BrokerConnection, Order, StrategyVersion, User
from core.orders.submit import OrderIntent, record_order
from core.strategies import store as strategy_store
from tests.core.bots.fixtures import ALWAYS_LONG
from tests.ledger_support import Ledger
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


# ---- editing a stopped bot ------------------------------------------------------------------------


def _changes(bot_id: int) -> list[BotChange]:
    with new_session() as session:
        return list(session.scalars(select(BotChange).where(BotChange.bot_id == bot_id).order_by(BotChange.id)))


def _edited(owner, bot_id: int, **changes) -> BotChange | None:
    with session_scope() as session:
        return manage.edit_bot(session, owner["user_id"], bot_id, _settings(owner, **changes))


def test_an_edit_changes_the_settings_and_records_only_what_changed(owner, make_user):
    with session_scope() as session:
        bot_id = manage.create_bot(session, owner["user_id"], _settings(owner)).id
        newer = strategy_store.create_strategy(session, owner["user_id"], "newer", code=ALWAYS_LONG).latest.id
    assert _edited(owner, bot_id) is None  # the same settings: nothing recorded
    _edited(owner, bot_id, params={"size": "0.75"}, timeframe="4h", strategy_version_id=newer)
    with new_session() as session:
        bot = session.get(Bot, bot_id)
        assert (bot.params, bot.timeframe, bot.strategy_version_id, bot.state) == (
            {"size": 0.75},
            "4h",
            newer,
            "paused",
        )
    [change] = _changes(bot_id)
    assert change.user_id == owner["user_id"]
    assert change.before == {"params": {"size": 0.5}, "timeframe": "1h", "strategy_version_id": owner["version_id"]}
    assert change.after == {"params": {"size": 0.75}, "timeframe": "4h", "strategy_version_id": newer}
    _edited(owner, bot_id, params={}, timeframe="4h", strategy_version_id=newer)  # back to the version's default
    with new_session() as session:
        bot = session.get(Bot, bot_id)
        [latest, first] = manage.change_history(session, bot)
        username = session.get(User, owner["user_id"]).username
    assert latest.changes == ("size 0.75 -> default",) and latest.by == username
    assert first.changes == ("strategy good v1 -> newer v1", "size 0.5 -> 0.75", "timeframe 1h -> 4h")


def test_a_running_bot_or_one_with_an_unfinished_order_is_not_edited(owner, redis_client):
    with session_scope() as session:
        bot = manage.create_bot(session, owner["user_id"], _settings(owner))
        manage.start_bot(session, bot)
        bot_id = bot.id
    with pytest.raises(manage.BotError, match="pause the bot before editing it"):
        _edited(owner, bot_id, params={"size": "0.2"})
    with session_scope() as session:
        manage.pause_bot(session, manage.get_bot(session, owner["user_id"], bot_id))
        order = record_order(
            session,
            owner["user_id"],
            OrderIntent(
                owner["broker_id"], "BTCUSDT", "buy", "market", Decimal("0.1"), source="bot", source_ref=str(bot_id)
            ),
        )
        order_id = order.id
    with pytest.raises(manage.BotError, match=f"market buy order #{order_id} is new"):
        _edited(owner, bot_id, params={"size": "0.2"})
    with session_scope() as session:
        session.get(Order, order_id).state = "cancelled"
        session.get(Bot, bot_id).pending_protection = {"order_id": order_id, "stop_loss": 1.0, "take_profit": None}
    with pytest.raises(manage.BotError, match="stop-loss/take-profit are waiting"):
        _edited(owner, bot_id, params={"size": "0.2"})
    with session_scope() as session:
        session.get(Bot, bot_id).pending_protection = None
    redis_client.set(bot_close_pending(bot_id), "1")
    try:
        with pytest.raises(manage.BotError, match="a close of its position is under way"):
            _edited(owner, bot_id, params={"size": "0.2"})
    finally:
        redis_client.delete(bot_close_pending(bot_id))
    with new_session() as session:
        assert session.get(Bot, bot_id).params == {"size": 0.5}
    assert _changes(bot_id) == []
    _edited(owner, bot_id, params={"size": "0.2"})
    assert [c.after for c in _changes(bot_id)] == [{"params": {"size": 0.2}}]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"params": {"size": "big"}}, "must be a number"),
        ({"timeframe": "2h"}, "timeframe must be one of"),
        ({"name": "taken"}, "already have a bot named 'taken'"),
        ({"strategy_version_id": "invalid"}, "does not validate"),
    ],
)
def test_a_bad_edit_is_refused_and_changes_nothing(owner, changes, message):
    with session_scope() as session:
        bot_id = manage.create_bot(session, owner["user_id"], _settings(owner)).id
        manage.create_bot(session, owner["user_id"], _settings(owner, name="taken"))
    if changes.get("strategy_version_id") == "invalid":
        changes["strategy_version_id"] = owner["invalid_version_id"]
    with pytest.raises(manage.BotError, match=message):
        _edited(owner, bot_id, **changes)
    with new_session() as session:
        bot = session.get(Bot, bot_id)
        assert (bot.name, bot.params, bot.timeframe, bot.strategy_version_id) == (
            "trend",
            {"size": 0.5},
            "1h",
            owner["version_id"],
        )
    assert _changes(bot_id) == []


def test_another_traders_bot_or_strategy_cannot_be_used_in_an_edit(owner, make_user):
    other, _ = make_user()
    with session_scope() as session:
        bot_id = manage.create_bot(session, owner["user_id"], _settings(owner)).id
        theirs = strategy_store.create_strategy(session, other.id, "theirs", code=ALWAYS_LONG).latest.id
    with pytest.raises(manage.BotNotFound), session_scope() as session:
        manage.edit_bot(session, other.id, bot_id, _settings(owner, params={"size": "0.2"}))
    with pytest.raises(manage.BotError, match="choose one of your strategy versions"):
        _edited(owner, bot_id, strategy_version_id=theirs)
    assert _changes(bot_id) == []


def test_a_bot_holding_a_position_keeps_its_broker_and_symbol(owner):
    with session_scope() as session:
        bot_id = manage.create_bot(session, owner["user_id"], _settings(owner)).id
    Ledger(owner["user_id"]).trade(
        owner["broker_id"],
        "buy",
        "0.01",
        "30000",
        datetime(2026, 1, 1, tzinfo=UTC),
        source="bot",
        source_ref=str(bot_id),
    )
    with pytest.raises(manage.BotError, match="close its position before moving it"):
        _edited(owner, bot_id, symbol="ETHUSDT")
    _edited(owner, bot_id, params={"size": "0.3"})  # the rest may change
    assert [c.after for c in _changes(bot_id)] == [{"params": {"size": 0.3}}]
