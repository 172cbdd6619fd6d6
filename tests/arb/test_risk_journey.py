"""The risk watch end to end: the real engine against the perp simulators and the real Postgres. An ADL
shrinks one leg, then a mark move liquidates the other; each time the engine sees it, brings the other leg
to the same size reduce-only, logs a `leg_mismatch` event and notifies the admins. A leg too close to
liquidation makes it reduce both legs together."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

from eth_account import Account
from sqlalchemy import select

from arb.engine import ArbEngine
from arb.store import ArbStore
from arb.venues import build_venues
from core.exchanges.perp.credentials import Credentials
from core.infra.db import new_session
from core.models.notifications import Notification
from tests.arb.conftest import admin, arb_config, events, inject, new_credentials, sim_positions, wait_for

ZERO = D(0)


def thin_accounts(sims, vest_cash: D = D(100), paradex_cash: D = D(100)) -> Credentials:
    """Fresh accounts with little collateral: with 100, 0.01 BTC is about 6x, liquidated some 16 % away."""
    creds = new_credentials(sims)
    for face, account, cash in (
        (sims.vest, creds.vest_api_key, vest_cash),
        (sims.paradex, str(int(creds.paradex_account, 16)), paradex_cash),
    ):
        sims.call(lambda f=face, a=account, c=cash: setattr(f.ledger.accounts[a], "cash", c))
    return creds


def held_config(sims, **risk):
    """A position that stays open: with 400 bps of fees a leg and an exit threshold of 0, closing would need the
    books to cross by 800 bps, which neither the simulators' noise nor the test's mark moves (seen by one feed
    a frame before the other) do; only the risk watch changes it."""
    fees = {"taker_fee_bps": "400"}
    return arb_config(sims, exit_threshold_bps=0, vest=fees, paradex=fees, risk={"poll_interval_s": 0.25, **risk})


def notified(admin_id: int, title: str) -> list[Notification]:
    with new_session() as session:
        rows = session.scalars(
            select(Notification).where(Notification.user_id == admin_id, Notification.title == title)
        )
        return list(rows.all())


async def entered(sims, cfg, creds) -> ArbEngine:
    """A started engine holding one entry (0.01 long Vest, short Paradex)."""
    engine = ArbEngine(cfg, await build_venues(cfg, creds), ArbStore())
    await engine.start()
    await wait_for(lambda: all(book.valid for book in engine.books.values()), 10, "both books")
    inject(sims, "paradex", 900, 0.8)  # past the 800 bps of fees of held_config()
    await wait_for(lambda: events(engine, "entry_executed"), 5, "entry")
    return engine


def vest_risk(engine: ArbEngine, size: str) -> dict | None:
    """The Vest leg of the engine's last risk read, once it has that size."""
    leg = engine.risk_view.get("legs", {}).get("vest", {})
    return leg if leg.get("size") == size else None


def wait_notified(admin_id: int, title: str, count: int) -> list[Notification]:
    """The admins are notified from a background thread: wait for the rows."""

    async def poll():
        return await wait_for(lambda: len(notified(admin_id, title)) >= count and notified(admin_id, title), 10, title)

    return asyncio.run(poll())


def test_an_adl_then_a_liquidation_are_each_matched_on_the_other_leg_with_an_event_and_a_notification(
    sims, infra, make_user
):
    admin_user, _ = make_user(is_admin=True)
    creds = thin_accounts(sims, vest_cash=D(21))  # the Vest leg is some 3 % from its liquidation
    cfg = held_config(sims, warn_distance_pct=1, reduce_distance_pct="0.5")
    step = {"bps": D(0)}

    async def go():
        engine = await entered(sims, cfg, creds)
        try:
            assert sim_positions(sims, creds) == {"vest": D("0.01"), "paradex": D("-0.01")}
            await wait_for(lambda: vest_risk(engine, "0.01"), 5, "the first risk read")
            risk = engine.snapshot()["risk"]
            assert 1 < D(risk["legs"]["vest"]["distance_pct"]) < 5 and D(risk["legs"]["paradex"]["distance_pct"]) > 5
            assert D(risk["accounts"]["vest"]["margin_ratio"]) > D(risk["accounts"]["paradex"]["margin_ratio"]) > 0

            adl = {"account": creds.paradex_account, "market": "BTC", "size": "0.004"}
            status, shrunk = admin(sims, "paradex", "adl", adl)
            assert status == 200 and shrunk["position"] == "-0.006" and shrunk["liquidation_price"]
            await wait_for(lambda: events(engine, "leg_mismatch"), 10, "the ADL seen")
            (seen,) = events(engine, "leg_mismatch")
            assert (seen["venue"], seen["expected"], seen["found"], seen["level"]) == (
                "paradex",
                "-0.01",
                "-0.006",
                "error",
            )
            await wait_for(lambda: events(engine, "rollback_executed"), 10, "vest brought to 0.006")
            assert sim_positions(sims, creds) == {"vest": D("0.006"), "paradex": D("-0.006")}
            await wait_for(lambda: not engine.unhedged, 5, "the hedge restored")
            assert engine.sizes == {"vest": D("0.006"), "paradex": D("-0.006")}

            # The underlying falls 1 % past the Vest leg's liquidation price: a step the two feeds see a frame
            # apart, kept under the 800 bps that would make closing look profitable for that frame.
            leg = await wait_for(lambda: vest_risk(engine, "0.006"), 5, "a risk read of the smaller legs")
            step["bps"] = (D(leg["liquidation_price"]) / D(leg["mark"]) - 1) * 10_000 - 100
            assert -800 < step["bps"] < 0
            status, _ = admin(sims, "vest", "mark", {"market": "BTC", "move_bps": str(round(step["bps"], 2))})
            assert status == 200
            await wait_for(lambda: len(events(engine, "leg_mismatch")) == 2, 10, "the liquidation seen")
            liquidated = events(engine, "leg_mismatch")[1]
            assert (liquidated["venue"], liquidated["expected"], liquidated["found"]) == ("vest", "0.006", "0")
            await wait_for(lambda: len(events(engine, "rollback_executed")) == 2, 10, "paradex closed")
            assert sim_positions(sims, creds) == {"vest": ZERO, "paradex": ZERO}
            rollback = events(engine, "leg_rollback")[-1]
            assert (rollback["venue"], rollback["side"], rollback["size"]) == ("paradex", "BUY", "0.006")
            assert not events(engine, "exit_executed") and not events(engine, "exit_failed")
        finally:
            back = (1 / (1 + step["bps"] / 10_000) - 1) * 10_000
            admin(sims, "vest", "mark", {"market": "BTC", "move_bps": str(round(back, 2))})  # back where it was
            await engine.stop()

    asyncio.run(go())
    title = f"Arbitrage {cfg.pair}: leg mismatch"
    found = wait_notified(admin_user.id, title, 2)
    assert {n.severity for n in found} == {"critical"} and "auto-deleveraging" in found[0].body


def test_a_leg_too_close_to_liquidation_reduces_both_legs_together(sims, infra, make_user):
    admin_user, _ = make_user(is_admin=True)
    creds = thin_accounts(sims)  # some 16 % from liquidation once entered: past a 30 % reduce threshold
    cfg = held_config(sims, warn_distance_pct=40, reduce_distance_pct=30)

    async def go():
        engine = await entered(sims, cfg, creds)
        try:
            await wait_for(lambda: events(engine, "reduce_executed"), 10, "both legs reduced")
            (reduced,) = events(engine, "reduce_executed")
            assert {(leg["venue"], leg["side"], leg["filled"]) for leg in reduced["legs"]} == {
                ("vest", "SELL", "0.01"),
                ("paradex", "BUY", "0.01"),
            }
            assert sim_positions(sims, creds) == {"vest": ZERO, "paradex": ZERO}
            warned = events(engine, "risk_reduce")
            assert warned and warned[0]["measure"] == "distance to liquidation" and warned[0]["threshold"] == "30"
            assert not events(engine, "leg_rollback")  # never one leg alone
        finally:
            await engine.stop()

    asyncio.run(go())
    (notice,) = wait_notified(admin_user.id, f"Arbitrage {cfg.pair}: risk reduce", 1)[:1]
    assert notice.severity == "error" and "both legs are reduced together" in notice.body


def test_a_leg_closed_at_the_venue_while_the_engine_stops_is_not_left_alone(sims, infra):
    creds = new_credentials(sims)
    cfg = held_config(sims, poll_interval_s=2)  # the stop, not the watch, finds it

    async def go():
        engine = await entered(sims, cfg, creds)
        vest_id = Account.from_key(creds.vest_signing_key).address
        status, reply = admin(sims, "vest", "position", {"account": vest_id, "market": "BTC", "size": 0})
        assert status == 200 and D(reply["position"]) == 0
        return engine, await engine.stop()

    engine, clean = asyncio.run(go())
    assert clean and sim_positions(sims, creds) == {"vest": ZERO, "paradex": ZERO}
    (reconciled,) = events(engine, "position_reconciled")
    assert reconciled["venues"] == {"vest": "0", "paradex": "-0.01"} and not events(engine, "leg_mismatch")
    (rollback,) = events(engine, "leg_rollback")
    assert (rollback["venue"], rollback["side"], rollback["size"]) == ("paradex", "BUY", "0.01")


def test_funding_settled_on_each_leg_is_booked_per_leg_into_the_pairs_pnl(sims, infra):
    creds = new_credentials(sims)
    cfg = held_config(sims)

    async def go():
        engine = await entered(sims, cfg, creds)
        try:
            cash = engine.cash
            for venue in ("vest", "paradex"):  # a positive rate: the Vest long pays, the Paradex short receives
                assert admin(sims, venue, "funding", {"market": "BTC", "rate_bps": "1"})[0] == 200
            await wait_for(lambda: len(events(engine, "funding_booked")) == 2, 10, "both legs' funding booked")
            vest = sims.call(lambda: sims.vest.ledger.accounts[creds.vest_api_key].funding["BTC"])
            paradex_id = str(int(creds.paradex_account, 16))
            paradex = sims.call(lambda: sims.paradex.ledger.accounts[paradex_id].funding["BTC"])
            assert vest < 0 < paradex and engine.funding == {"vest": vest, "paradex": paradex}
            assert engine.cash == cash + vest + paradex  # counted in the pair's P&L
            assert engine.snapshot()["pnl"]["funding"] == {"vest": str(vest), "paradex": str(paradex)}
        finally:
            await engine.stop()

    asyncio.run(go())
