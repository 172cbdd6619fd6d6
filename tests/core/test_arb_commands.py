"""The admins' commands to the arbitrage engine: typed, validated both ways, recorded under the admin before they
are queued on Redis."""

from __future__ import annotations

import json
import time

import pytest
import redis

from core import arb_commands
from core.arb_commands import Command
from core.infra.bus import ARB_COMMANDS, get_redis
from core.infra.db import new_session
from core.models.arb import ArbOperatorAction


def test_a_command_goes_to_json_and_back_unchanged():
    command = Command("flatten", "BTC", 7, "alice", 1_700_000_000.5, 42)
    assert Command.from_json(command.to_json()) == command
    assert json.loads(command.to_json())["action"] == "flatten"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"action": "explode"}, "unknown action 'explode'"),
        ({"action": None}, "unknown action 'None'"),
        ({"pair": "BTC/../x"}, "pair:"),
        ({"pair": ""}, "pair:"),
        ({"by_user_id": "7"}, "by_user_id:"),
        ({"by_user_id": True}, "by_user_id:"),
        ({"action_id": -1}, "action_id:"),
        ({"by_username": ""}, "by_username:"),
        ({"by_username": "x" * 65}, "by_username:"),
        ({"requested_at": "now"}, "requested_at:"),
    ],
)
def test_a_bad_field_is_a_value_error_naming_it(change, message):
    fields = {"action": "pause", "pair": "BTC", "by_user_id": 1, "by_username": "bob", "requested_at": 1.0}
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Command.from_json(json.dumps({**fields, "action_id": 0, **change}))


@pytest.mark.parametrize("raw", ["", "{", "[]", "null", '"pause"', '{"action": "pause"}', b"\xff\xfe"])
def test_anything_else_than_a_whole_command_is_a_value_error(raw):
    with pytest.raises(ValueError, match="JSON|expected"):
        Command.from_json(raw)


def test_a_request_records_the_admin_then_queues_one_command(make_user, redis_client):
    user, _ = make_user(is_admin=True)
    before = time.time()
    with new_session() as session:
        action_id = arb_commands.request(session, get_redis(), "pause", "cmd-test", user.id, user.username)
    (raw,) = redis_client.lrange(ARB_COMMANDS, 0, -1)
    command = Command.from_json(raw)
    assert (command.action_id, command.by_username, command.pair) == (action_id, user.username, "cmd-test")
    assert before - 1 <= command.requested_at <= time.time() + 1
    assert arb_commands.take(redis_client) == [raw] and arb_commands.take(redis_client) == []
    with new_session() as session:
        arb_commands.record_result(session, action_id, "done: entries paused")
        session.commit()
        (row,) = arb_commands.recent_actions(session, "cmd-test")
    assert (row.id, row.action, row.user_id, row.result) == (action_id, "pause", user.id, "done: entries paused")


def test_a_bad_action_writes_nothing_and_redis_away_is_written_on_the_row(make_user, redis_client):
    user, _ = make_user(is_admin=True)
    with new_session() as session, pytest.raises(ValueError, match="unknown action"):
        arb_commands.request(session, get_redis(), "explode", "cmd-away", user.id, user.username)
    away = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)  # nothing listens there
    with new_session() as session, pytest.raises(redis.RedisError):
        arb_commands.request(session, away, "resume", "cmd-away", user.id, user.username)
    with new_session() as session:
        (row,) = session.query(ArbOperatorAction).filter_by(pair="cmd-away").all()
    assert row.action == "resume" and row.result.startswith("not queued: Redis unreachable")
    assert redis_client.llen(ARB_COMMANDS) == 0
