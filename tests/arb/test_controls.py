"""The admins' controls against the perp simulators and the real Postgres and Redis: a command recorded and
queued as the web does it (core/arb_commands.request), taken by the engine's own task, answered with an event
and a result on its row."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from decimal import Decimal as D

import pytest

from arb.config import parse_arb_config
from arb.engine import ArbEngine
from core import arb_commands
from core.infra.bus import ARB_COMMANDS, get_redis
from core.infra.db import new_session
from core.models.arb import ArbOperatorAction, ArbPosition
from tests.arb.conftest import admin, arb_config, events, inject, new_credentials, sim_positions, start_engine, wait_for

ZERO = D(0)
FLAT = {"vest": ZERO, "paradex": ZERO}
HELD = {"vest": D("0.01"), "paradex": D("-0.01")}


@pytest.fixture()
def operator(make_user, redis_client):
    user, _ = make_user(is_admin=True)
    return user


def held_config(sims, **overrides):
    """An entry stays open: closing would need the books to cross by the fees (800 bps), only a command closes it."""
    fees = {"taker_fee_bps": "400"}
    return arb_config(
        sims,
        exit_threshold_bps=0,
        health_interval_s=0.2,
        daily_loss_limit_usd=100_000,  # 400 bps a leg: a round trip costs some 100 in fees, the usual limit
        vest=fees,
        paradex=fees,
        **overrides,
    )


def ask(user, pair: str, action: str) -> int:
    """What the web does for an admin's click: the row under their name, the command on the Redis list."""
    with new_session() as session:
        return arb_commands.request(session, get_redis(), action, pair, user.id, user.username)


def action_row(action_id: int) -> ArbOperatorAction:
    with new_session() as session:
        return session.get(ArbOperatorAction, action_id)


async def answered(action_id: int) -> ArbOperatorAction:
    return await wait_for(
        lambda: (row := action_row(action_id)).result != arb_commands.QUEUED and row, 10, f"action {action_id}"
    )


async def controlled(sims, cfg, creds) -> ArbEngine:
    """A started engine taking the admins' commands from Redis, after any spread an earlier test injected."""
    inject(sims, "paradex", 0, 0)
    return await start_engine(cfg, creds, take_commands=lambda: arb_commands.take(get_redis()))


def test_pause_stops_entries_while_a_spread_lasts_and_resume_lets_them_in_again(sims, infra, operator):
    creds, cfg = new_credentials(sims), held_config(sims)

    async def go():
        engine = await controlled(sims, cfg, creds)
        try:
            paused = await answered(ask(operator, cfg.pair, "pause"))
            assert (paused.result, paused.username, paused.user_id) == (
                "done: entries paused",
                operator.username,
                operator.id,
            )
            (event,) = events(engine, "operator_paused")
            assert event["by"] == operator.username
            snapshot = engine.snapshot()
            assert snapshot["state"] == "paused" and snapshot["reason"] == f"paused by {operator.username}"
            inject(sims, "paradex", 900, 1.0)
            await asyncio.sleep(1.5)  # the spread came and went while paused
            assert not events(engine, "entry_executed") and sim_positions(sims, creds) == FLAT

            resumed = await answered(ask(operator, cfg.pair, "resume"))
            assert resumed.result == "done: entries resumed" and engine.snapshot()["state"] == "running"
            inject(sims, "paradex", 900, 1.0)
            await wait_for(lambda: events(engine, "entry_executed"), 5, "an entry once resumed")
            assert sim_positions(sims, creds) == HELD
        finally:
            await engine.stop()

    asyncio.run(go())


def test_flatten_closes_both_legs_together_and_pauses(sims, infra, operator):
    creds, cfg = new_credentials(sims), held_config(sims)

    async def go():
        engine = await controlled(sims, cfg, creds)
        try:
            inject(sims, "paradex", 900, 1.0)
            await wait_for(lambda: events(engine, "entry_executed"), 5, "an entry")
            assert sim_positions(sims, creds) == HELD
            done = await answered(ask(operator, cfg.pair, "flatten"))
            assert done.result == "done: both legs closed; paused" and done.username == operator.username
            assert sim_positions(sims, creds) == FLAT and engine.flat and engine.paused_by == operator.username
            (flattened,) = events(engine, "flatten_executed")
            assert sorted((leg["venue"], leg["side"], leg["filled"]) for leg in flattened["legs"]) == [
                ("paradex", "BUY", "0.01"),
                ("vest", "SELL", "0.01"),
            ]
            assert events(engine, "flatten_requested")[0]["by"] == operator.username
            inject(sims, "paradex", 900, 1.0)
            await asyncio.sleep(1.5)  # paused: the next spread is not taken
            assert len(events(engine, "entry_executed")) == 1 and sim_positions(sims, creds) == FLAT
            assert engine.counters["flattens"] == 1
        finally:
            await engine.stop()

    asyncio.run(go())
    with new_session() as session:
        position = session.get(ArbPosition, cfg.pair)
        assert position.paused_by == operator.username and position.sizes == {"vest": "0", "paradex": "0"}
    from tests.arb.test_engine import intents

    flatten = intents(cfg.pair)[-1]
    assert flatten.kind == "flatten" and flatten.state == "done" and all(leg.reduce_only for leg in flatten.legs)

    async def restarted():
        engine = await controlled(sims, cfg, creds)
        try:
            return engine.snapshot()
        finally:
            await engine.stop()

    again = asyncio.run(restarted())  # the admin's pause outlives the process
    assert again["state"] == "paused", again["reason"]
    assert again["controls"]["paused_by"] == operator.username


def test_the_kill_switch_reset_is_refused_while_the_position_is_unhedged_and_done_once_hedged(sims, infra, operator):
    creds, cfg = new_credentials(sims), held_config(sims, risk={"poll_interval_s": 0.25})
    rejecting = threading.Event()

    def reject_vest():
        while rejecting.is_set():
            sims.vest.faults.reject_next_order = True
            time.sleep(0.001)

    async def go():
        engine = await controlled(sims, cfg, creds)
        try:
            inject(sims, "paradex", 900, 1.0)
            await wait_for(lambda: events(engine, "entry_executed"), 5, "an entry")
            rejecting.set()
            threading.Thread(target=reject_vest, daemon=True).start()
            status, _ = admin(
                sims, "paradex", "position", {"account": creds.paradex_account, "market": "BTC", "size": "0"}
            )
            assert status == 200
            await wait_for(
                lambda: events(engine, "unhedged_position_remains"), 10, "vest left alone, its close refused"
            )
            engine.halted_reason = "daily_loss_limit"  # the day's loss limit tripped (with both legs, it closes them)
            refused = await answered(ask(operator, cfg.pair, "reset_kill_switch"))
            assert refused.result.startswith("refused: the position is unhedged (vest 0.01, paradex 0")
            (event,) = events(engine, "operator_command_refused")
            assert event["action"] == "reset_kill_switch" and event["by"] == operator.username
            assert engine.halted_reason == "daily_loss_limit" and engine.snapshot()["state"] == "halted"

            rejecting.clear()
            await wait_for(lambda: not engine.unhedged and engine.flat, 10, "the hedge restored")
            reset = await answered(ask(operator, cfg.pair, "reset_kill_switch"))
            assert reset.result == "done: kill switch (daily_loss_limit) reset" and engine.halted_reason is None
            await asyncio.sleep(cfg.health_interval_s * 3)  # the loss counts from the reset: no new trip
            assert engine.halted_reason is None and events(engine, "kill_switch_reset")[0]["by"] == operator.username
        finally:
            rejecting.clear()
            await engine.stop()

    asyncio.run(go())
    with new_session() as session:
        position = session.get(ArbPosition, cfg.pair)
        assert position.halted_reason is None and position.loss_offset != 0  # the reset outlives the process


def test_a_malformed_command_is_logged_and_skipped_and_nothing_else_happens(sims, infra, operator, redis_client):
    creds, cfg = new_credentials(sims), held_config(sims)
    good = {"pair": cfg.pair, "by_user_id": operator.id, "by_username": operator.username, "action_id": 0}
    malformed = [
        "{not json",
        json.dumps({**good, "action": "explode", "requested_at": time.time()}),
        json.dumps({**good, "action": "flatten"}),  # no requested_at
        json.dumps(["pause"]),
    ]

    async def go():
        engine = await controlled(sims, cfg, creds)
        try:
            inject(sims, "paradex", 900, 1.0)
            await wait_for(lambda: events(engine, "entry_executed"), 5, "an entry")
            redis_client.rpush(ARB_COMMANDS, *malformed)
            await wait_for(lambda: len(events(engine, "operator_command_malformed")) == 4, 5, "the four skipped")
            reasons = [e["error"] for e in events(engine, "operator_command_malformed")]
            assert reasons[0].startswith("not JSON") and "unknown action 'explode'" in reasons[1]
            assert "requested_at" in reasons[2] and reasons[3] == "expected a JSON object"
            assert all(e["level"] == "warning" for e in events(engine, "operator_command_malformed"))
            assert redis_client.llen(ARB_COMMANDS) == 0
            await asyncio.sleep(cfg.health_interval_s * 2)
            assert sim_positions(sims, creds) == HELD and engine.sizes == HELD
            assert engine.paused_by is None and engine.dry_run is False and engine.snapshot()["state"] == "running"
            assert not [
                e
                for e in engine.events
                if e["event"].startswith(("operator_", "flatten", "dry_run"))
                and e["event"] != "operator_command_malformed"
            ]
        finally:
            await engine.stop()

    asyncio.run(go())


def test_dry_run_on_sends_nothing_and_off_trades_again(sims, infra, operator):
    creds, cfg = new_credentials(sims), held_config(sims)

    async def go():
        engine = await controlled(sims, cfg, creds)
        try:
            on = await answered(ask(operator, cfg.pair, "dry_run_on"))
            assert on.result == "done: dry run on" and engine.snapshot()["state"] == "dry_run"
            inject(sims, "paradex", 900, 1.0)
            await wait_for(lambda: [e for e in events(engine, "spread_detected") if e.get("dry_run")], 5, "seen")
            await asyncio.sleep(1.2)
            assert not events(engine, "entry_executed") and sim_positions(sims, creds) == FLAT
            off = await answered(ask(operator, cfg.pair, "dry_run_off"))
            assert off.result == "done: dry run off" and engine.snapshot()["controls"]["dry_run"] is False
            inject(sims, "paradex", 900, 1.0)
            await wait_for(lambda: events(engine, "entry_executed"), 5, "an entry")
            assert sim_positions(sims, creds) == HELD
        finally:
            await engine.stop()

    asyncio.run(go())


def test_an_admins_dry_run_switch_outlives_an_engine_restart_and_the_page_shows_it(sims, infra, operator):
    creds, cfg = new_credentials(sims), held_config(sims)

    async def switch(action: str) -> dict:
        engine = await controlled(sims, cfg, creds)
        try:
            assert (await answered(ask(operator, cfg.pair, action))).result.startswith("done: dry run")
        finally:
            await engine.stop()
        engine = await controlled(sims, cfg, creds)  # a new process: only the database remembers
        try:
            return {"snapshot": engine.snapshot(), "restored": events(engine, "dry_run_restored")}
        finally:
            await engine.stop()

    on = asyncio.run(switch("dry_run_on"))
    assert on["snapshot"]["state"] == "dry_run" and on["snapshot"]["controls"]["dry_run"] is True
    assert [e["dry_run"] for e in on["restored"]] == [True]
    off = asyncio.run(switch("dry_run_off"))
    assert off["snapshot"]["state"] == "running" and off["snapshot"]["controls"]["dry_run"] is False
    assert off["restored"] == []  # the admin's last word is config.yaml's default: nothing to restore


def test_only_a_dry_run_switch_the_engine_did_is_restored(infra, make_user):
    user, _ = make_user(is_admin=True)
    pair = f"dr-{time.time_ns()}"
    with new_session() as session:
        assert arb_commands.last_dry_run_choice(session, pair) is None
        for action, result in (("dry_run_on", "done: dry run on"), ("dry_run_off", "refused: the engine is stopping")):
            session.add(ArbOperatorAction(pair=pair, action=action, user_id=user.id, username="x", result=result))
        session.add(ArbOperatorAction(pair=pair, action="pause", user_id=user.id, username="x", result="done: paused"))
        session.add(ArbOperatorAction(pair="other", action="dry_run_off", user_id=user.id, username="x", result="done"))
        session.commit()
        assert arb_commands.last_dry_run_choice(session, pair) is True


def _idle_engine(pair: str = "ctl-test") -> ArbEngine:
    """An engine with no venues (nothing is sent): enough for the commands refused before any trading."""
    return ArbEngine(parse_arb_config({"pair": pair}), {}, None)


def _command(action: str, pair: str = "ctl-test", age_s: float = 0.0) -> arb_commands.Command:
    return arb_commands.Command(action, pair, 1, "alice", time.time() - age_s, 0)


def test_a_command_for_another_pair_or_too_old_is_refused_and_changes_nothing():
    engine = _idle_engine()

    async def go():
        other = await engine.apply_command(_command("pause", pair="ETH"))
        late = await engine.apply_command(_command("dry_run_on", age_s=arb_commands.EXPIRES_AFTER_S + 5))
        idle = await engine.apply_command(_command("reset_kill_switch"))
        return other, late, idle

    other, late, idle = asyncio.run(go())
    assert other == "refused: the engine has no pair ETH (the command reached ctl-test)"
    assert late.startswith("refused: the command waited 65 s") and idle == "refused: the kill switch is not on"
    assert engine.paused_by is None and engine.dry_run is False
    assert [e["event"] for e in engine.events] == ["operator_command_refused"] * 3
