"""The risk watch's decisions (arb/risk.py) and the perp simulator's risk faults (margin model, liquidation,
ADL, a position changed from outside, their admin endpoints and the bad input they refuse)."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from arb import risk
from arb.config import parse_arb_config
from core.exchanges.perp.venue import PerpAccount
from sim.perp.ledger import MAINTENANCE_RATE, CorrelatedMarket, PerpLedger, SimAccount
from tests.arb.conftest import admin, new_credentials, sim_positions

RISK = parse_arb_config({"risk": {"warn_distance_pct": 15, "reduce_distance_pct": 5}}).risk
sizes_strategy = st.decimals(min_value=-5, max_value=5, places=3)


@settings(max_examples=60, deadline=None)
@given(vest=sizes_strategy, paradex=sizes_strategy)
def test_after_a_repair_both_legs_are_of_equal_size_and_no_leg_grew_or_flipped(vest, paradex):
    sizes = {"vest": vest, "paradex": paradex}
    orders = risk.repair(sizes)
    after = risk.apply(sizes, orders)
    assert after["vest"] + after["paradex"] == 0
    for venue in sizes:
        assert abs(after[venue]) <= abs(sizes[venue]) and after[venue] * sizes[venue] >= 0
    assert all(qty > 0 for _, _, qty in orders) and (orders == []) == (vest + paradex == 0)


@settings(max_examples=30, deadline=None)
@given(size=st.decimals(min_value=D("0.001"), max_value=5, places=3), step=st.sampled_from([D("0.01"), D(1)]))
def test_a_reduction_takes_both_legs_down_together_by_one_step(size, step):
    sizes = {"vest": size, "paradex": -size}
    after = risk.apply(sizes, risk.reduction(sizes, step))
    assert after == {"vest": max(size - step, D(0)), "paradex": -max(size - step, D(0))}


def test_no_reduction_of_legs_that_do_not_match_repair_comes_first():
    assert risk.reduction({"vest": D("0.01"), "paradex": D("-0.004")}, D("0.01")) == []
    assert risk.reduction({"vest": D(0), "paradex": D(0)}, D("0.01")) == []


def test_distance_to_liquidation_is_measured_against_the_leg_and_classified():
    long = risk.LegRisk("vest", D("0.01"), mark=D(100), liquidation_price=D(96))  # 4 % away: reduce
    short = risk.LegRisk("paradex", D("-0.01"), mark=D(100), liquidation_price=D(110))  # 10 % away: warn
    assert (long.distance_pct, short.distance_pct) == (D(4), D(10))
    assert risk.LegRisk("vest", D(0), D(100), D(96)).distance_pct is None  # no leg, no distance
    assert risk.LegRisk("vest", D(1), D(100), None).distance_pct is None  # the venue gives no price
    found = risk.alarms([short, long], [], RISK)
    assert [(a.level, a.venue, a.value, a.threshold) for a in found] == [
        ("reduce", "vest", D(4), D(5)),
        ("warn", "paradex", D(10), D(15)),
    ]


def test_margin_ratio_is_maintenance_over_equity_and_classified():
    calm, tight, gone = (PerpAccount("vest", D(100), D(0), D(m)) for m in (10, 60, 90))
    assert calm.margin_ratio == D("0.1") and PerpAccount("vest", D(0), D(0), D(1)).margin_ratio == 1
    assert PerpAccount("vest", D(100), D(0)).margin_ratio is None
    assert risk.alarms([], [calm], RISK) == []
    assert [a.level for a in risk.alarms([], [tight], RISK)] == ["warn"]
    assert [a.level for a in risk.alarms([], [gone], RISK)] == ["reduce"]
    view = risk.view([risk.LegRisk("vest", D(1), D(100), D(96))], [gone], risk.alarms([], [gone], RISK), 1.0)
    assert view["legs"]["vest"]["distance_pct"] == "4.00" and view["accounts"]["vest"]["level"] == "reduce"


def test_the_simulator_liquidates_an_account_at_its_liquidation_price():
    market = CorrelatedMarket(("vest", "paradex"), {"BTC": D(60000)}, seed=3, spread_every_s=(0, 0))
    ledger = PerpLedger("vest", market)
    ledger.accounts["a"] = SimAccount(D(100))
    ledger.outside_fill("a", "BTC", D("0.01"))  # long 0.01 with 100 of cash: about 6x
    entry = ledger.accounts["a"].positions["BTC"][1]
    liquidation = ledger.liquidation_price("a", "BTC")
    assert liquidation == ((D("0.01") * entry - 100) / (D("0.01") * (1 - MAINTENANCE_RATE))).quantize(D("0.01"))
    market.move("BTC", (liquidation / entry - 1) * 10_000 + 200)  # 2 % above it: still open
    assert ledger.liquidate_underwater() == [] and ledger.maintenance("a") > 0
    market.move("BTC", D(-400))  # about 2 % below it
    assert ledger.liquidate_underwater() == [("a", "BTC", D("0.01"))]
    assert ledger.accounts["a"].positions["BTC"][0] == 0 and ledger.liquidation_price("a", "BTC") is None


def test_the_simulator_settles_funding_longs_paying_shorts_and_counts_it_per_open_position():
    market = CorrelatedMarket(("vest", "paradex"), {"BTC": D(60000)}, seed=3, spread_every_s=(0, 0))
    ledger = PerpLedger("vest", market)
    ledger.accounts["long"], ledger.accounts["short"] = SimAccount(D(1000)), SimAccount(D(1000))
    ledger.outside_fill("long", "BTC", D("0.1"))
    ledger.outside_fill("short", "BTC", D("-0.1"))
    ledger.pay_funding("BTC", D(1))  # 1 bps of some 6,000 of notional
    paid, received = ledger.accounts["long"].funding["BTC"], ledger.accounts["short"].funding["BTC"]
    assert paid == -received and D("-0.61") < paid < D("-0.59")
    assert ledger.accounts["long"].cash == 1000 + paid
    ledger.outside_fill("long", "BTC", D("-0.1"))  # closed: the next position counts from zero
    assert "BTC" not in ledger.accounts["long"].funding


def test_admin_endpoints_change_a_position_from_outside_and_deleverage_it(sims):
    creds = new_credentials(sims)
    status, reply = admin(sims, "paradex", "position", {"account": creds.paradex_account, "market": "BTC", "size": -1})
    assert status == 200 and reply["position"] == "-1" and float(reply["liquidation_price"]) > 60000
    status, reply = admin(sims, "paradex", "adl", {"account": creds.paradex_account, "market": "BTC", "size": "0.4"})
    assert status == 200 and reply["position"] == "-0.6"
    from eth_account import Account

    vest_id = Account.from_key(creds.vest_signing_key).address
    status, reply = admin(sims, "vest", "position", {"account": vest_id, "market": "BTC", "size": "0.6"})
    assert status == 200 and reply["position"] == "0.6"
    assert sim_positions(sims, creds) == {"vest": D("0.6"), "paradex": D("-0.6")}


def test_admin_endpoints_refuse_bad_input_with_a_clear_error_and_change_nothing(sims):
    creds = new_credentials(sims)
    account = creds.paradex_account
    refused = [
        ("position", {"account": account, "market": "DOGE", "size": 1}, "market must be one of BTC, ETH"),
        ("position", {"account": "0xdead", "market": "BTC", "size": 1}, "no account '0xdead' on this venue"),
        ("position", {"account": account, "market": "BTC", "size": "lots"}, "size must be a number"),
        ("position", {"account": account, "market": "BTC", "size": "NaN"}, "size must be a finite number"),
        ("position", {"account": account, "market": "BTC"}, "size is required"),
        ("position", {"account": account, "market": "BTC", "size": 1e9}, "size must be within"),
        ("adl", {"account": account, "market": "BTC", "size": -1}, "size must be positive"),
        ("mark", {"market": "BTC", "move_bps": 9000}, "move_bps must be within ±5000"),
        ("funding", {"market": "BTC", "rate_bps": 500}, "rate_bps must be within ±100"),
        ("mark", "[1, 2]", "body must be a JSON object"),
        ("mark", "{not json", "body must be a JSON object"),
    ]
    for path, body, error in refused:
        status, reply = admin(sims, "paradex", path, body)
        assert (status, error in reply["error"]) == (400, True), (path, body, reply)
    assert sim_positions(sims, creds) == {"vest": D(0), "paradex": D(0)}
