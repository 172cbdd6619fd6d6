"""OrderBook: snapshots, deltas with sequence checks, VWAP, and refusal of bad input."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exchanges.errors import MalformedResponse
from core.exchanges.perp import BookGap, OrderBook, PerpOrderRequest, parse_levels


def book(bids, asks, seq=1) -> OrderBook:
    b = OrderBook("test", "BTC-PERP")
    b.apply_snapshot([(D(p), D(s)) for p, s in bids], [(D(p), D(s)) for p, s in asks], seq=seq)
    return b


def test_vwap_walks_levels_on_the_right_side():
    b = book([("99", "1"), ("98", "2")], [("101", "1"), ("102", "3")])
    assert b.vwap("BUY", D("1")) == D("101")
    assert b.vwap("BUY", D("2")) == D("101.5")
    assert b.vwap("SELL", D("3")) == (D("99") + D("196")) / 3
    assert b.vwap("BUY", D("5")) is None  # deeper than the book
    assert b.worst_price("BUY", D("2")) == D("102")


def test_delta_updates_inserts_and_deletes_in_sequence():
    b = book([("99", "1")], [("101", "1")], seq=10)
    assert b.apply_delta([(D("99"), D("0")), (D("98"), D("4"))], [(D("101"), D("2"))], seq=11)
    assert b.best_bid().price == D("98") and b.best_ask().size == D("2")
    assert b.seq == 11


def test_gap_raises_and_invalidates_until_next_snapshot():
    b = book([("99", "1")], [("101", "1")], seq=10)
    with pytest.raises(BookGap, match="expected seq 11, got 13"):
        b.apply_delta([], [(D("101"), D("5"))], seq=13)
    assert not b.valid and b.vwap("BUY", D("1")) is None
    with pytest.raises(BookGap, match="without a snapshot"):
        b.apply_delta([], [], seq=14)
    b.apply_snapshot([(D("99"), D("1"))], [(D("100"), D("1"))], seq=14)
    assert b.valid and b.vwap("BUY", D("1")) == D("100")


def test_stale_and_duplicate_frames_are_ignored():
    b = book([("99", "1")], [("101", "1")], seq=10)
    assert not b.apply_delta([(D("99"), D("0"))], [], seq=10)  # duplicate
    assert not b.apply_delta([(D("99"), D("0"))], [], seq=7)  # late
    assert not b.apply_snapshot([(D("50"), D("1"))], [(D("60"), D("1"))], seq=9)  # older snapshot
    assert b.best_bid().price == D("99")


def test_crossed_book_is_treated_as_a_gap():
    b = book([("99", "1")], [("101", "1")], seq=1)
    with pytest.raises(BookGap, match="crossed"):
        b.apply_delta([(D("102"), D("1"))], [], seq=2)
    assert not b.valid


@pytest.mark.parametrize("rows", [
    "not a list", [["abc", "1"]], [["100"]], [["-1", "1"]], [["100", "-2"]], [["NaN", "1"]], [None],
])
def test_malformed_levels_are_refused_clearly(rows):
    with pytest.raises(MalformedResponse, match="book"):
        parse_levels(rows, venue="test")


def test_levels_accept_strings_numbers_and_dicts():
    assert parse_levels([["1.5", 2], {"price": "3", "size": "0"}], venue="v") == [(D("1.5"), D(2)), (D(3), D(0))]


def test_age_is_infinite_before_any_frame():
    assert OrderBook("v", "m").age() == float("inf")
    assert book([("1", "1")], [("2", "1")]).age() < 1


@pytest.mark.parametrize("kwargs,message", [
    ({"side": "LONG"}, "side"), ({"size": D(0)}, "size"), ({"size": 1.5}, "size"),
    ({"price": D(-1)}, "price"), ({"order_type": "LIMIT", "price": None}, "LIMIT"),
])
def test_order_request_refuses_bad_input(kwargs, message):
    base = {"market": "BTC-PERP", "side": "BUY", "size": D("0.01"), "price": D(100), "client_id": "c1"}
    with pytest.raises(ValueError, match=message):
        PerpOrderRequest(**{**base, **kwargs})


levels = st.lists(st.tuples(st.integers(1, 1000), st.integers(1, 50)), min_size=1, max_size=20,
                  unique_by=lambda t: t[0])


@given(asks=levels, size=st.integers(1, 400))
def test_vwap_is_between_best_and_worst_and_exact(asks, size):
    b = OrderBook("v", "m")
    b.apply_snapshot([], [(D(p), D(s)) for p, s in asks], seq=1)
    got = b.vwap("BUY", D(size))
    total = sum(s for _, s in asks)
    if size > total:
        assert got is None
        return
    prices = sorted(p for p, _ in asks)
    assert D(prices[0]) <= got <= b.worst_price("BUY", D(size))
    remaining, cost = size, 0
    for p, s in sorted(asks):
        take = min(remaining, s)
        cost, remaining = cost + take * p, remaining - take
    assert got == D(cost) / D(size)
