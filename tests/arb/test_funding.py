"""Funding per intent end to end: the real engine against the perp simulators (funding injected on their admin
endpoints) and the real Postgres. Each payment is stored under the intent whose position it was paid on, also
one settled while the engine was stopped and one after its restart; the history counts it in that intent's net
and CSV, and the P&L since inception equals the engine's own realised P&L once flat."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from decimal import Decimal as D

from sqlalchemy import select

from core import arb_commands, arb_history
from core.arb_history import HistoryFilter
from core.infra.db import new_session
from core.models.arb import ArbFunding
from tests.arb.conftest import admin, events, sim_positions, start_engine, wait_for
from tests.arb.test_risk_journey import entered, held_config, new_credentials

ZERO = D(0)


def payments(pair: str) -> list[ArbFunding]:
    with new_session() as session:
        return list(session.scalars(select(ArbFunding).where(ArbFunding.pair == pair).order_by(ArbFunding.id)))


def settled(sims, creds) -> dict[str, D]:
    """What each venue settled on the test's open legs so far (+ received)."""
    paradex_id = str(int(creds.paradex_account, 16))
    return sims.call(
        lambda: {
            "vest": sims.vest.ledger.accounts[creds.vest_api_key].funding.get("BTC", ZERO),
            "paradex": sims.paradex.ledger.accounts[paradex_id].funding.get("BTC", ZERO),
        }
    )


def test_each_funding_payment_is_stored_under_its_intent_across_a_restart_and_counted_in_its_net(sims, infra):
    creds = new_credentials(sims)
    cfg = held_config(sims)

    async def first_run() -> int:
        engine = await entered(sims, cfg, creds)
        try:
            entry_id = events(engine, "entry_executed")[0]["intent_id"]
            for venue in ("vest", "paradex"):  # a positive rate: the Vest long pays, the Paradex short receives
                assert admin(sims, venue, "funding", {"market": "BTC", "rate_bps": "1"})[0] == 200
            await wait_for(lambda: len(payments(cfg.pair)) == 2, 10, "both payments stored")
            assert {e["intent_id"] for e in events(engine, "funding_booked")} == {entry_id}
            return entry_id
        finally:
            await engine.stop()

    entry_id = asyncio.run(first_run())
    first = settled(sims, creds)
    assert admin(sims, "vest", "funding", {"market": "BTC", "rate_bps": "-2"})[0] == 200  # while the engine is away

    async def second_run() -> tuple[D, dict[str, D]]:
        engine = await start_engine(cfg, creds)
        try:
            assert engine.funding_intent_id == entry_id and engine.period_funding == first["vest"] + first["paradex"]
            await wait_for(lambda: len(payments(cfg.pair)) == 3, 10, "the payment made while away, at the first read")
            assert admin(sims, "paradex", "funding", {"market": "BTC", "rate_bps": "1"})[0] == 200
            await wait_for(lambda: len(payments(cfg.pair)) == 4, 10, "the payment after the restart")
            paid = settled(sims, creds)  # the venues count a position's funding until it closes
            await engine.apply_command(arb_commands.Command("flatten", cfg.pair, 1, "ops", time.time(), 0))
            assert engine.flat and sim_positions(sims, creds) == {"vest": ZERO, "paradex": ZERO}
            assert engine.funding_intent_id is None  # the period ended with the position
            return engine.realized_pnl, paid
        finally:
            await engine.stop()

    realised_by_engine, total = asyncio.run(second_run())
    stored = payments(cfg.pair)
    assert [p.intent_id for p in stored] == [entry_id] * 4
    assert sum((p.amount for p in stored), ZERO) == total["vest"] + total["paradex"] != ZERO
    assert sorted((p.venue, p.amount) for p in stored[:2]) == sorted(first.items())

    with new_session() as session:
        rows = {r.kind: r for r in arb_history.all_rows(session, HistoryFilter(pair=cfg.pair))}
        since_inception = arb_history.realised_since_inception(session, cfg.pair)
        exported = "".join(arb_history.csv_chunks(arb_history.all_rows(session, HistoryFilter(pair=cfg.pair))))
    entry, flat = rows["entry"], rows["flatten"]
    assert entry.funding == total["vest"] + total["paradex"] and flat.funding == ZERO
    legs_flow = sum(
        (leg.avg_price * leg.filled * (1 if leg.side == "SELL" else -1) for leg in entry.legs.values()), ZERO
    )
    assert entry.net == legs_flow - entry.fees + entry.funding
    assert since_inception == entry.net + flat.net == realised_by_engine  # funding in the P&L since inception
    by_id = {int(r["intent_id"]): r for r in csv.DictReader(io.StringIO(exported))}
    assert D(by_id[entry_id]["funding"]) == entry.funding and D(by_id[entry_id]["net_pnl"]) == entry.net
