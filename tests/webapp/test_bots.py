"""Bot pages over the Flask test client: create, start, pause, delete, the bot page, bad input, other users."""

# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
from __future__ import annotations

import json
import secrets

import pytest
from sqlalchemy import select

from core.infra.db import new_session, session_scope
from core.models import Bot, BotChange, BotTick, BrokerConnection
from core.strategies import store as strategy_store
from tests.core.bots.fixtures import ALWAYS_LONG
from tests.support import csrf_token_from, remember_secret


@pytest.fixture()
def setup_of(infra):
    """A broker connection (nothing listens at its URL: pages must not need the venue) and a strategy."""

    def factory(user_id: int) -> dict:
        with session_scope() as session:
            broker = BrokerConnection(user_id=user_id, venue="sim", label="Sim", base_url="http://127.0.0.1:9")
            broker.set_credentials(
                remember_secret("k-" + secrets.token_hex(6)), remember_secret("s-" + secrets.token_hex(9))
            )
            session.add(broker)
            version = strategy_store.create_strategy(session, user_id, "Always long", code=ALWAYS_LONG).latest
            session.flush()
            return {"broker_id": broker.id, "version_id": version.id}

    return factory


def _form(client, **fields) -> dict:
    token = csrf_token_from(client.get("/bots/").get_data(as_text=True))
    return {
        "csrf_token": token,
        "name": "trend",
        "symbol": "BTCUSDT",
        "timeframe": "1h",
        "params": "",
        "candles_needed": "500",
        "timeout_seconds": "10",
    } | fields


def _bot_of(user_id: int) -> Bot | None:
    with new_session() as session:
        return session.scalar(select(Bot).where(Bot.user_id == user_id))


def test_create_start_pause_and_delete_a_bot(client, logged_in, setup_of):
    ids = setup_of(logged_in.id)
    page = client.get("/bots/").get_data(as_text=True)
    assert "Always long v1" in page and "New bot" in page
    response = client.post(
        "/bots/",
        data=_form(client, strategy_version_id=ids["version_id"], broker_id=ids["broker_id"], params='{"size": 0.25}'),
    )
    assert response.status_code == 302
    bot = _bot_of(logged_in.id)
    assert (bot.state, bot.params, bot.symbol) == ("paused", {"size": 0.25}, "BTCUSDT")
    detail = client.get(f"/bots/{bot.id}").get_data(as_text=True)
    assert "No decision yet" in detail and ">Start<" in detail
    token = csrf_token_from(detail)
    assert client.post(f"/bots/{bot.id}/start", data={"csrf_token": token}).status_code == 302
    assert _bot_of(logged_in.id).state == "running"
    # A running bot cannot be deleted.
    client.post(f"/bots/{bot.id}/delete", data={"csrf_token": token})
    assert _bot_of(logged_in.id) is not None
    assert "pause the bot before deleting it" in client.get(f"/bots/{bot.id}").get_data(as_text=True)
    client.post(f"/bots/{bot.id}/pause", data={"csrf_token": token, "next": "https://evil.example/"})
    assert _bot_of(logged_in.id).state == "paused"
    response = client.post(f"/bots/{bot.id}/delete", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/bots/")
    assert _bot_of(logged_in.id) is None


def test_the_redirect_after_an_action_stays_on_the_bots_pages(client, logged_in, setup_of):
    ids = setup_of(logged_in.id)
    client.post("/bots/", data=_form(client, strategy_version_id=ids["version_id"], broker_id=ids["broker_id"]))
    bot = _bot_of(logged_in.id)
    token = csrf_token_from(client.get("/bots/").get_data(as_text=True))
    evil = client.post(f"/bots/{bot.id}/start", data={"csrf_token": token, "next": "https://evil.example/"})
    assert evil.headers["Location"].endswith(f"/bots/{bot.id}")
    back = client.post(f"/bots/{bot.id}/pause", data={"csrf_token": token, "next": "/bots/"})
    assert back.headers["Location"].endswith("/bots/")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"params": "{size: 1}"}, "JSON object"),
        ({"params": '{"nope": 1}'}, "unknown parameter"),
        ({"params": '{"size": "lots"}'}, "must be a number"),
        ({"symbol": "BTC/USDT"}, "not a symbol"),
        ({"timeout_seconds": "0"}, "Number must be between"),
        ({"name": ""}, "This field is required"),
        ({"symbol": "BNBUSDT", "source_venue": "kraken"}, "BNB/USD is not listed on kraken"),  # no mapping
        ({"symbol": "ZZZUSDT", "source_venue": "binance"}, "ZZZUSDT on sim is not in the symbol table"),
        ({"source_venue": "ftx"}, "Not a valid choice"),
        ({"source_venue": "sim", "source_symbol": "BTC/USDT"}, "is not a symbol like BTCUSDT"),
    ],
)
def test_bad_input_is_refused_with_the_reason_and_the_form_kept(client, logged_in, setup_of, fields, message):
    ids = setup_of(logged_in.id)
    response = client.post(
        "/bots/", data=_form(client, strategy_version_id=ids["version_id"], broker_id=ids["broker_id"], **fields)
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and message in html
    if fields.get("params"):
        assert "{size: 1}" in html or fields["params"].replace('"', "&#34;") in html
    assert _bot_of(logged_in.id) is None


def test_the_bot_page_shows_the_strategy_error_with_its_line(client, logged_in, setup_of):
    ids = setup_of(logged_in.id)
    with session_scope() as session:
        bot = Bot(
            user_id=logged_in.id,
            name="broken",
            strategy_version_id=ids["version_id"],
            broker_id=ids["broker_id"],
            venue="sim",
            symbol="BTCUSDT",
            timeframe="1h",
            state="error",
            last_error={
                "type": "ZeroDivisionError",
                "message": "division by zero",
                "line": 12,
                "candle_time": None,
                "kind": "strategy",
            },
        )
        session.add(bot)
        session.flush()
        session.add(
            BotTick(
                bot_id=bot.id,
                candle_time=1_700_000_000_000,
                action="error",
                note="ZeroDivisionError: division by zero (line 12)",
            )
        )
        bot_id = bot.id
    html = client.get(f"/bots/{bot_id}").get_data(as_text=True)
    assert "Stopped by an error in the strategy" in html and "ZeroDivisionError" in html and "line 12" in html
    assert "2023-11-14 22:13:20 UTC" in html and ">Resume<" in html
    assert "broken</strong> is stopped" in client.get("/bots/").get_data(as_text=True)
    assert "division by zero" in client.get(f"/bots/{bot_id}/live").get_data(as_text=True)


def test_another_users_bot_is_not_found_and_unchanged(client, logged_in, setup_of, make_user, login, app):
    owner, _ = make_user()
    ids = setup_of(owner.id)
    with session_scope() as session:
        bot = Bot(
            user_id=owner.id,
            name="theirs",
            strategy_version_id=ids["version_id"],
            broker_id=ids["broker_id"],
            venue="sim",
            symbol="BTCUSDT",
            timeframe="1h",
            state="running",
        )
        session.add(bot)
        session.flush()
        bot_id = bot.id
    token = csrf_token_from(client.get("/bots/").get_data(as_text=True))
    for method, path in [("get", ""), ("get", "/live"), ("post", "/start"), ("post", "/pause"), ("post", "/delete")]:
        response = getattr(client, method)(f"/bots/{bot_id}{path}", data={"csrf_token": token})
        assert response.status_code == 404
    # Nor can their broker or strategy be used for a bot of mine.
    response = client.post(
        "/bots/", data=_form(client, strategy_version_id=ids["version_id"], broker_id=ids["broker_id"])
    )
    assert response.status_code == 400
    with new_session() as session:
        assert session.get(Bot, bot_id).state == "running"
    assert _bot_of(logged_in.id) is None


def _edit_form(client, bot_id: int, **fields) -> dict:
    """The edit page's own form as the browser would post it, with `fields` changed."""
    page = client.get(f"/bots/{bot_id}/edit").get_data(as_text=True)
    with new_session() as session:
        bot = session.get(Bot, bot_id)
        values = {
            "name": bot.name,
            "strategy_version_id": str(bot.strategy_version_id),
            "broker_id": str(bot.broker_id),
            "symbol": bot.symbol,
            "timeframe": bot.timeframe,
            "params": json.dumps(bot.params),
            "candles_needed": str(bot.candles_needed),
            "timeout_seconds": str(bot.timeout_seconds),
            "source_venue": bot.source_venue,
            "source_symbol": bot.source_symbol,
        }
    assert f'value="{bot.name}"' in page  # the form starts from the bot as it is
    return {"csrf_token": csrf_token_from(page)} | values | fields


def _created(client, ids) -> Bot:
    client.post(
        "/bots/",
        data=_form(client, strategy_version_id=ids["version_id"], broker_id=ids["broker_id"], params='{"size": 0.01}'),
    )
    return _bot_of(ids["user_id"])


def test_a_paused_bot_is_edited_and_the_page_shows_the_change(client, logged_in, setup_of):
    ids = setup_of(logged_in.id) | {"user_id": logged_in.id}
    bot = _created(client, ids)
    assert f'href="/bots/{bot.id}/edit"' in client.get(f"/bots/{bot.id}").get_data(as_text=True)
    response = client.post(f"/bots/{bot.id}/edit", data=_edit_form(client, bot.id, params='{"size": 0.02}'))
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/bots/{bot.id}")
    assert _bot_of(logged_in.id).params == {"size": 0.02}
    page = client.get(f"/bots/{bot.id}").get_data(as_text=True)
    assert "Bot edited: size 0.01 -&gt; 0.02." in page
    assert f'size 0.01 -&gt; 0.02 <span class="muted">by {logged_in.username} at' in page
    # Without the CSRF token nothing changes.
    no_token = _edit_form(client, bot.id, params='{"size": 0.5}')
    del no_token["csrf_token"]
    assert client.post(f"/bots/{bot.id}/edit", data=no_token).status_code == 400
    assert _bot_of(logged_in.id).params == {"size": 0.02}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"params": "{size: 1}"}, "JSON object"),
        ({"params": '{"size": "lots"}'}, "must be a number"),
        ({"params": '{"nope": 1}'}, "unknown parameter"),
        ({"timeframe": "2h"}, "Not a valid choice"),
        ({"candles_needed": "10"}, "Number must be between"),
        ({"symbol": "BTC/USDT"}, "not a symbol"),
        ({"strategy_version_id": "999999999"}, "Not a valid choice"),
    ],
)
def test_a_bad_edit_is_refused_with_the_reason_and_changes_nothing(client, logged_in, setup_of, fields, message):
    ids = setup_of(logged_in.id) | {"user_id": logged_in.id}
    bot = _created(client, ids)
    response = client.post(f"/bots/{bot.id}/edit", data=_edit_form(client, bot.id, **fields))
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    after = _bot_of(logged_in.id)
    assert (after.params, after.timeframe, after.symbol, after.candles_needed) == ({"size": 0.01}, "1h", "BTCUSDT", 500)
    with new_session() as session:
        assert session.scalar(select(BotChange.id).where(BotChange.bot_id == bot.id)) is None


def test_a_running_bot_is_not_edited(client, logged_in, setup_of):
    ids = setup_of(logged_in.id) | {"user_id": logged_in.id}
    bot = _created(client, ids)
    form = _edit_form(client, bot.id, params='{"size": 0.5}')
    client.post(f"/bots/{bot.id}/start", data={"csrf_token": form["csrf_token"]})
    assert f'href="/bots/{bot.id}/edit"' not in client.get(f"/bots/{bot.id}").get_data(as_text=True)
    response = client.post(f"/bots/{bot.id}/edit", data=form)
    assert response.status_code == 302
    assert "Pause the bot before editing it" in client.get(f"/bots/{bot.id}").get_data(as_text=True)
    assert _bot_of(logged_in.id).params == {"size": 0.01}


def test_another_traders_bot_cannot_be_edited(client, logged_in, setup_of, make_user):
    owner, _ = make_user()
    ids = setup_of(owner.id)
    with session_scope() as session:
        bot = Bot(
            user_id=owner.id,
            name="theirs",
            strategy_version_id=ids["version_id"],
            broker_id=ids["broker_id"],
            venue="sim",
            symbol="BTCUSDT",
            timeframe="1h",
            params={"size": 0.01},
        )
        session.add(bot)
        session.flush()
        bot_id = bot.id
    token = csrf_token_from(client.get("/bots/").get_data(as_text=True))
    assert client.get(f"/bots/{bot_id}/edit").status_code == 404
    response = client.post(f"/bots/{bot_id}/edit", data={"csrf_token": token, "name": "mine", "params": '{"size": 1}'})
    assert response.status_code == 404
    with new_session() as session:
        assert (session.get(Bot, bot_id).name, session.get(Bot, bot_id).params) == ("theirs", {"size": 0.01})
