"""The carry exit rule: its verdict (arb/carry.py), its settings (validated, off by default), and end to end against
the perp simulators with injected funding: a position that receives funding is held, one that pays more than
the fees to exit leaves both legs together through the ordinary exit, with a `carry_exit` event on the page."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest

from arb.carry import judge
from arb.config import CarryExitConfig, parse_arb_config
from core.arb_events import describe
from core.infra.config import ConfigError
from tests.arb.conftest import admin, arb_config, events, new_credentials, sim_positions, wait_for
from tests.arb.test_risk_journey import entered

ZERO = D(0)
FLAT = {"vest": ZERO, "paradex": ZERO}
HELD = {"vest": D("0.01"), "paradex": D("-0.01")}


def carry_config(sims, **carry):
    """A position only the carry rule closes: its spread exit needs the books to cross by 800 bps of fees."""
    fees = {"taker_fee_bps": "400"}
    return arb_config(
        sims,
        exit_threshold_bps=0,
        daily_loss_limit_usd=100_000,
        vest=fees,
        paradex=fees,
        risk={"poll_interval_s": 0.25},
        carry_exit={"enabled": True, "min_hold_minutes": 0, **carry},
    )


RULE = CarryExitConfig(enabled=True, min_hold_minutes=30, horizon_hours=8, threshold_usd=D(1))


def test_the_carry_is_judged_only_after_the_minimum_hold():
    assert judge(D(-100), 29 * 60, D(1), RULE) is None
    assert judge(D(-100), 0, D(1), RULE.model_copy(update={"min_hold_minutes": 0})) is None


def test_a_paid_carry_projected_past_the_exit_fees_and_threshold_exits_and_a_smaller_one_holds():
    paid = judge(D(-1), 3600, D(5), RULE)  # 1 an hour, 8 over the horizon > 5 of fees + 1
    assert paid is not None and (paid.per_hour, paid.projected, paid.exit) == (D(-1), D(-8), True)
    small = judge(D(-1), 3600, D(7), RULE)  # 8 is not above 7 + 1
    assert small is not None and small.projected == D(-8) and small.exit is False
    received = judge(D(3), 2 * 3600, D(0), RULE)
    assert received is not None and received.per_hour == D("1.5") and received.exit is False


def test_the_rule_off_never_exits_however_much_the_position_pays():
    off = judge(D(-1000), 3600, D(0), RULE.model_copy(update={"enabled": False}))
    assert off is not None and off.projected == D(-8000) and off.exit is False


def test_the_rule_is_off_by_default_and_bad_settings_are_refused_with_the_key():
    assert parse_arb_config({}).carry_exit.enabled is False
    for raw, key in (
        ({"horizon_hours": 0}, "arb.carry_exit.horizon_hours"),
        ({"min_hold_minutes": -1}, "arb.carry_exit.min_hold_minutes"),
        ({"threshold_usd": "-5"}, "arb.carry_exit.threshold_usd"),
        ({"enabled": "maybe"}, "arb.carry_exit.enabled"),
        ({"interval": 8}, "arb.carry_exit.interval"),
    ):
        with pytest.raises(ConfigError) as exc:
            parse_arb_config({"carry_exit": raw})
        assert str(exc.value).startswith(f"arb: config.yaml: {key}:"), str(exc.value)


def test_a_position_receiving_funding_is_held_and_one_paying_past_the_exit_fees_exits_both_legs(sims, infra):
    creds = new_credentials(sims)
    cfg = carry_config(sims, horizon_hours=8)

    async def go():
        engine = await entered(sims, cfg, creds)
        try:
            assert admin(sims, "paradex", "funding", {"market": "BTC", "rate_bps": "5"})[0] == 200  # short receives
            await wait_for(lambda: events(engine, "funding_booked"), 10, "the funding received")
            await wait_for(lambda: (engine.carry_view or {}).get("funding", "0") != "0", 5, "the carry judged")
            await asyncio.sleep(1.0)  # four more reads of the risk watch
            assert not events(engine, "carry_exit") and sim_positions(sims, creds) == HELD
            assert D(engine.snapshot()["pnl"]["carry"]["per_hour"]) > 0

            # the Vest long pays 50 bps (some 3 of a notional of ~600): a few seconds in, that is thousands over 8 h
            assert admin(sims, "vest", "funding", {"market": "BTC", "rate_bps": "50"})[0] == 200
            await wait_for(lambda: events(engine, "exit_executed"), 10, "the carry exit")
            (told,) = events(engine, "carry_exit")
            assert D(told["projected"]) < 0 and -D(told["projected"]) > D(told["exit_fees"]) > 0
            assert told["intent_id"] == events(engine, "entry_executed")[0]["intent_id"]
            (exited,) = events(engine, "exit_executed")
            assert sorted((leg["venue"], leg["side"], leg["filled"]) for leg in exited["legs"]) == [
                ("paradex", "BUY", "0.01"),
                ("vest", "SELL", "0.01"),
            ]
            assert sim_positions(sims, creds) == FLAT and engine.flat
            assert "Carry exit: long vest short paradex paid" in describe("carry_exit", told)
            await wait_for(lambda: engine.carry_view is None, 5, "the carry cleared once flat")
        finally:
            await engine.stop()

    asyncio.run(go())


def test_in_dry_run_the_carry_exit_is_told_once_and_nothing_is_sent(sims, infra):
    creds = new_credentials(sims)
    cfg = carry_config(sims)

    async def go():
        engine = await entered(sims, cfg, creds)
        try:
            engine.dry_run = True
            assert admin(sims, "vest", "funding", {"market": "BTC", "rate_bps": "50"})[0] == 200
            await wait_for(lambda: events(engine, "carry_exit"), 10, "the carry exit told")
            await asyncio.sleep(1.0)
            (told,) = events(engine, "carry_exit")
            assert told["dry_run"] is True and "(dry run: nothing sent)" in describe("carry_exit", told)
            assert not events(engine, "exit_executed") and sim_positions(sims, creds) == HELD
        finally:
            await engine.stop()

    asyncio.run(go())
