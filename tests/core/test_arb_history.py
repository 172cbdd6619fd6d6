"""The arbitrage trade history computed from the stored intents and legs: legs summed over their attempts, the
captured spread, fees and net of an intent, and the P&L realised since inception."""

from __future__ import annotations

import secrets
from decimal import Decimal as D

import pytest

from core import arb_history
from core.arb_history import FilterError, HistoryFilter
from core.infra.db import new_session, session_scope
from core.models.arb import ArbFunding, ArbIntent, ArbLeg


def leg(venue: str, side: str, filled: str, price: str | None, fee: str, attempt: int = 1) -> ArbLeg:
    return ArbLeg(
        venue=venue,
        market="BTC",
        side=side,
        size=D("0.01"),
        attempt=attempt,
        client_id=secrets.token_hex(8),
        state="filled" if D(filled) else "rejected",
        filled_size=D(filled),
        avg_price=None if price is None else D(price),
        fee=D(fee),
    )


def stored(pair: str, kind: str, legs: list[ArbLeg], sizes_after: dict | None) -> int:
    with session_scope() as session:
        intent = ArbIntent(pair=pair, kind=kind, direction="long_vest_short_paradex", size=D("0.01"), state="done")
        intent.before, intent.outcome = {}, ({"sizes_after": sizes_after} if sizes_after else {})
        intent.legs = legs
        session.add(intent)
        session.flush()
        return intent.id


def test_an_intents_legs_are_summed_over_their_attempts(infra):
    pair = f"s-{secrets.token_hex(3)}"
    stored(
        pair,
        "entry",
        [
            leg("vest", "BUY", "0.01", "100", "0.001"),
            leg("paradex", "SELL", "0", None, "0"),  # rejected, retried
            leg("paradex", "SELL", "0.004", "102", "0.0004", attempt=2),
            leg("paradex", "SELL", "0.006", "101", "0.0006", attempt=3),
        ],
        {"vest": "0.01", "paradex": "-0.01"},
    )
    with new_session() as session:
        (row,) = list(arb_history.all_rows(session, HistoryFilter(pair=pair)))
    paradex = row.legs["paradex"]
    assert (paradex.side, paradex.filled, paradex.avg_price, paradex.fee) == ("SELL", D("0.01"), D("101.4"), D("0.001"))
    assert row.fees == D("0.002") and row.net == D("0.012")  # 1.014 received - 1.000 paid - 0.002
    assert round(row.captured_spread_bps, 2) == D("139.03")  # 1.4 over a mid of 100.7


def test_the_pnl_since_inception_counts_each_pair_up_to_its_last_flat_intent(infra):
    a, b = f"a-{secrets.token_hex(3)}", f"b-{secrets.token_hex(3)}"
    held = {"vest": "0.01", "paradex": "-0.01"}
    flat = {"vest": "0", "paradex": "0.000"}
    stored(a, "entry", [leg("vest", "BUY", "0.01", "100", "0.001"), leg("paradex", "SELL", "0.01", "101", "0")], held)
    stored(a, "exit", [leg("vest", "SELL", "0.01", "100", "0.001"), leg("paradex", "BUY", "0.01", "100.5", "0")], flat)
    stored(a, "entry", [leg("vest", "BUY", "0.01", "100", "0"), leg("paradex", "SELL", "0.01", "103", "0")], held)
    stored(b, "entry", [leg("vest", "BUY", "0.01", "200", "0"), leg("paradex", "SELL", "0.01", "201", "0")], held)
    stored(b, "flatten", [leg("vest", "SELL", "0.01", "199", "0"), leg("paradex", "BUY", "0.01", "200", "0")], flat)
    with new_session() as session:
        only_a = arb_history.realised_since_inception(session, a)
        only_b = arb_history.realised_since_inception(session, b)
    assert only_a == D("0.003")  # 0.01 - 0.005 - 0.002 in fees; the open entry after it is not realised
    assert only_b == D("0")  # +0.01 in, -0.01 out


def funded(intent_id: int, pair: str, *amounts: str) -> None:
    with session_scope() as session:
        for amount in amounts:
            session.add(ArbFunding(pair=pair, intent_id=intent_id, venue="vest", amount=D(amount)))


def test_funding_counts_in_its_intents_net_in_the_pnl_since_inception_and_in_the_pairs_summary(infra):
    pair = f"f-{secrets.token_hex(3)}"
    held, flat = {"vest": "0.01", "paradex": "-0.01"}, {"vest": "0", "paradex": "0"}
    entry = stored(
        pair, "entry", [leg("vest", "BUY", "0.01", "100", "0.001"), leg("paradex", "SELL", "0.01", "101", "0")], held
    )
    funded(entry, pair, "-0.0004", "0.0001")
    stored(
        pair, "exit", [leg("vest", "SELL", "0.01", "100", "0.001"), leg("paradex", "BUY", "0.01", "100.5", "0")], flat
    )
    reopened = stored(
        pair, "entry", [leg("vest", "BUY", "0.01", "100", "0"), leg("paradex", "SELL", "0.01", "102", "0")], held
    )
    funded(reopened, pair, "0.0002")  # the open position's: not realised yet
    with new_session() as session:
        rows = {r.id: r for r in arb_history.all_rows(session, HistoryFilter(pair=pair))}
        since_inception = arb_history.realised_since_inception(session, pair)
        (summary,) = [s for s in arb_history.pair_summaries(session) if s.pair == pair]
    assert (rows[entry].funding, rows[entry].net) == (D("-0.0003"), D("0.0087"))  # 0.01 - 0.001 - 0.0003
    assert since_inception == D("0.0027")  # 0.0087 in, 0.005 + 0.001 paid back out
    assert (summary.intents, summary.fees, summary.funding) == (3, D("0.002"), D("-0.0001"))
    assert summary.net == D("0.0027") + D("0.0202") and summary.realised == since_inception
    assert round(summary.entry_spread_bps, 2) == D("148.76") and round(summary.exit_spread_bps, 2) == D("-49.88")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"kind": "swap"}, "kind: expected one of entry"),
        ({"state": "DONE"}, "state: expected one of pending"),
        ({"from": "2026-02-30"}, "from: expected a date"),
        ({"from": "2026-02-02", "to": "2026-02-01"}, "from: must not be after to"),
        ({"pair": "a b"}, "pair: expected"),
    ],
)
def test_a_bad_filter_says_which_field(args, message):
    with pytest.raises(FilterError, match=message):
        HistoryFilter.parse(args)


def test_a_filter_round_trips_through_its_query_arguments():
    args = {"pair": "BTC", "kind": "exit", "state": "done", "from": "2026-01-01", "to": "2026-01-31"}
    assert HistoryFilter.parse(args).query_args() == args and HistoryFilter.parse({}).query_args() == {}
    assert arb_history.parse_page(None) == 1 and arb_history.parse_page("3") == 3
