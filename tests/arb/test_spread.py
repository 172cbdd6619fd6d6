"""Spreads at size, both directions, fees included; the decision rule."""

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arb.spread import VwapCache, compute_spreads, decide, direction_venues
from core.exchanges.perp.book import OrderBook

FEES = {"vest": D(1), "paradex": D(2)}


def book(venue: str, bids, asks, seq: int = 1) -> OrderBook:
    b = OrderBook(venue, "BTC")
    b.apply_snapshot([(D(p), D(s)) for p, s in bids], [(D(p), D(s)) for p, s in asks], seq)
    return b


def test_entry_and_exit_spreads_walk_the_book_at_size_and_include_fees():
    vest = book("vest", [("99", "1")], [("100", "0.5"), ("101", "0.5")])  # buy 1 on vest: vwap 100.5
    paradex = book("paradex", [("102", "0.5"), ("101.5", "1")], [("103", "1")])  # sell 1: vwap 101.75
    spreads = compute_spreads({"vest": vest, "paradex": paradex}, D(1), FEES)
    mid = (D("99") + D("100.5") + D("101.75") + D(103)) / 4
    assert spreads.mid == mid
    assert spreads.entry_bps["long_vest_short_paradex"] == (D("101.75") - D("100.5")) / mid * 10_000 - 3
    assert spreads.exit_bps["long_vest_short_paradex"] == (D(103) - D(99)) / mid * 10_000 + 3
    assert spreads.entry_bps["long_paradex_short_vest"] == (D(99) - D(103)) / mid * 10_000 - 3
    assert spreads.best_entry()[0] == "long_vest_short_paradex"
    assert direction_venues("long_vest_short_paradex") == ("vest", "paradex")


def test_too_thin_or_invalid_books_give_no_spread():
    vest = book("vest", [("99", "1")], [("100", "0.5")])
    paradex = book("paradex", [("102", "5")], [("103", "5")])
    assert compute_spreads({"vest": vest, "paradex": paradex}, D(1), FEES) is None  # 0.5 ask on vest
    vest = book("vest", [("99", "5")], [("100", "5")])
    paradex.invalidate()
    assert compute_spreads({"vest": vest, "paradex": paradex}, D(1), FEES) is None


level = st.tuples(
    st.decimals(min_value=D(1), max_value=D(1000), places=2), st.decimals(min_value=D("0.01"), max_value=D(5), places=2)
)


def walked_vwap(levels: dict, size: D, best_first_descending: bool) -> D | None:
    """The plain definition: take from the best price outwards until `size` is filled."""
    remaining, cost = size, D(0)
    for price in sorted(levels, reverse=best_first_descending):
        take = min(remaining, levels[price])
        cost, remaining = cost + take * price, remaining - take
        if remaining == 0:
            return cost / size
    return None


@settings(max_examples=200, deadline=None)
@given(
    levels=st.lists(level, min_size=1, max_size=15), size=st.decimals(min_value=D("0.01"), max_value=D(20), places=2)
)
def test_cached_vwaps_are_the_walked_vwaps_of_both_sides(levels, size):
    bids = dict(levels)
    asks = {p + 1000: s for p, s in bids.items()}
    b = book("vest", list(bids.items()), list(asks.items()))
    sell, buy = walked_vwap(bids, size, True), walked_vwap(asks, size, False)
    assert VwapCache().get(b, size) == (None if sell is None or buy is None else (sell, buy))


def test_vwap_cache_recomputes_only_after_a_book_update():
    cache = VwapCache()
    b = book("vest", [("99", "1")], [("100", "1")])
    first = cache.get(b, D(1))
    assert cache.get(b, D(1)) is first  # no frame since: the very same cached pair
    b.apply_snapshot([(D(98), D(1))], [(D(100), D(1))], 2)
    assert cache.get(b, D(1)) == (D(98), D(100))
    b.invalidate()
    assert cache.get(b, D(1)) is None


def spreads_with(entry_long_vest: str, exit_long_vest: str):
    from arb.spread import Spreads

    return Spreads(
        D(100),
        {"long_vest_short_paradex": D(entry_long_vest), "long_paradex_short_vest": D(-9)},
        {"long_vest_short_paradex": D(exit_long_vest), "long_paradex_short_vest": D(20)},
        {},
    )


@pytest.mark.parametrize(
    "entry,exit_,position,can_add,expected",
    [
        ("9", "12", None, True, ("enter", "long_vest_short_paradex")),
        ("7.99", "12", None, True, None),  # under the entry threshold
        ("30", "12", None, False, None),  # kill switch / limits: no entry however good
        ("2", "5.5", "long_vest_short_paradex", True, ("exit", "long_vest_short_paradex")),
        ("2", "6.5", "long_vest_short_paradex", True, None),  # not converged yet
        ("9", "7", "long_vest_short_paradex", True, ("enter", "long_vest_short_paradex")),  # add up to max
        ("9", "5", "long_vest_short_paradex", False, ("exit", "long_vest_short_paradex")),  # exits even when halted
    ],
)
def test_decision(entry, exit_, position, can_add, expected):
    decision = decide(
        spreads_with(entry, exit_),
        position_direction=position,
        entry_threshold_bps=D(8),
        exit_threshold_bps=D(6),
        can_add=can_add,
    )
    assert (decision.action, decision.direction) == expected if expected else decision is None
