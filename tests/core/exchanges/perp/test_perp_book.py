"""OrderBook: snapshots, deltas with sequence checks, VWAP, and refusal of bad input."""

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.exchanges.errors import MalformedResponse
from core.exchanges.perp.book import BookGap, OrderBook, parse_levels
from core.exchanges.perp.venue import PerpOrderRequest


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


@pytest.mark.parametrize(
    "rows",
    [
        "not a list",
        [["abc", "1"]],
        [["100"]],
        [["-1", "1"]],
        [["100", "-2"]],
        [["NaN", "1"]],
        [None],
        [["1", "1"], ["12"]],
        ["12"],
        [["Infinity", "1"]],
        [["100", "-Infinity"]],
        [["0", "1"]],
        [["-0", "1"]],
        [["sNaN", "1"]],
        [[True, "1"]],
        [["100", None]],
        [[["100"], "1"]],
        {"100": "1"},
        [["100", "1"], "ab"],
        [["1", "1"], ["2", "x"]],
        [{"1": "1", "2": "2"}],
    ],
)
def test_malformed_levels_are_refused_clearly(rows):
    with pytest.raises(MalformedResponse, match="book"):
        parse_levels(rows, venue="test")


def test_levels_accept_strings_numbers_and_dicts():
    assert parse_levels([["1.5", 2], {"price": "3", "size": "0"}], venue="v") == [(D("1.5"), D(2)), (D(3), D(0))]
    assert parse_levels([[0.1, 1.25]], venue="v") == [
        (D("0.1"), D("1.25"))
    ]  # a float by its text, not its binary value
    assert parse_levels([], venue="v") == []


def test_interned_text_never_stands_for_another_value():
    assert parse_levels([["1", "1"], ["2", "0"]], venue="v") == [(D(1), D(1)), (D(2), D(0))]
    with pytest.raises(MalformedResponse):  # True == 1 as a dict key, but it is no price
        parse_levels([[True, "1"]], venue="v")
    with pytest.raises(MalformedResponse):  # "0" is a known size, not a valid price
        parse_levels([["0", "1"]], venue="v")
    assert parse_levels([["1.0", "1.00"]], venue="v")[0][1].as_tuple() == D("1.00").as_tuple()


decimal_text = st.decimals(min_value=D("0.00000001"), max_value=D(10) ** 9, places=8).map(str)
junk = st.one_of(
    decimal_text,
    st.sampled_from(["0", "-1", "NaN", "inf", "1e3", "x", "", " 5 "]),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.none(),
    st.booleans(),
)


def parsed_row_by_row(rows: list) -> list[tuple[D, D]]:
    """The definition parse_levels must agree with: each field is the Decimal of its text, price > 0, size >= 0."""
    out = []
    for price_raw, size_raw in rows:
        price, size = D(str(price_raw)), D(str(size_raw))
        if not (price.is_finite() and size.is_finite() and price > 0 and size >= 0):
            raise ValueError(price_raw, size_raw)
        out.append((price, size))
    return out


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.lists(junk, min_size=2, max_size=2), max_size=12))
def test_parse_levels_matches_the_row_by_row_definition(rows):
    try:
        expected = parsed_row_by_row(rows)
    except (ArithmeticError, ValueError):
        with pytest.raises(MalformedResponse, match="bad book level"):
            parse_levels(rows, venue="v")
        return
    got = parse_levels(rows, venue="v")
    assert got == expected
    assert [(p.as_tuple(), s.as_tuple()) for p, s in got] == [(p.as_tuple(), s.as_tuple()) for p, s in expected]


def test_age_is_infinite_before_any_frame():
    assert OrderBook("v", "m").age() == float("inf")
    assert book([("1", "1")], [("2", "1")]).age() < 1


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"side": "LONG"}, "side"),
        ({"size": D(0)}, "size"),
        ({"size": 1.5}, "size"),
        ({"price": D(-1)}, "price"),
        ({"order_type": "LIMIT", "price": None}, "LIMIT"),
    ],
)
def test_order_request_refuses_bad_input(kwargs, message):
    base = {"market": "BTC-PERP", "side": "BUY", "size": D("0.01"), "price": D(100), "client_id": "c1"}
    with pytest.raises(ValueError, match=message):
        PerpOrderRequest(**{**base, **kwargs})


levels = st.lists(
    st.tuples(st.integers(1, 1000), st.integers(1, 50)), min_size=1, max_size=20, unique_by=lambda t: t[0]
)


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


class ReferenceBook:
    """The naive book the optimised one must equal: a dict per side, sorted on every read."""

    def __init__(self):
        self.sides = {"bids": {}, "asks": {}}
        self.seq, self.valid = None, False

    def snapshot(self, bids, asks, seq):
        self.sides = {"bids": {p: s for p, s in bids if s > 0}, "asks": {p: s for p, s in asks if s > 0}}
        self.applied(seq)

    def delta(self, bids, asks, seq):
        if not self.valid or seq != self.seq + 1:
            self.invalidate()
            raise BookGap("gap")
        for name, levels in (("bids", bids), ("asks", asks)):
            for price, size in levels:
                if size > 0:
                    self.sides[name][price] = size
                else:
                    self.sides[name].pop(price, None)
        self.applied(seq)

    def applied(self, seq):
        self.seq = seq
        bids, asks = self.sides["bids"], self.sides["asks"]
        if bids and asks and max(bids) >= min(asks):
            self.invalidate()
            raise BookGap("crossed")
        self.valid = True

    def invalidate(self):
        self.sides, self.valid = {"bids": {}, "asks": {}}, False

    def levels(self, name):
        return sorted(self.sides[name].items(), reverse=(name == "bids"))

    def vwap(self, side, size):
        remaining, cost = size, D(0)
        for price, available in self.levels("asks" if side == "BUY" else "bids") if self.valid else []:
            take = min(remaining, available)
            cost, remaining = cost + take * price, remaining - take
            if remaining == 0:
                return cost / size
        return None

    def worst_price(self, side, size):
        remaining = size
        for price, available in self.levels("asks" if side == "BUY" else "bids"):
            remaining -= available
            if remaining <= 0:
                return price
        return None


# A small price grid so deltas hit existing levels; bids and asks overlap at the edge now and then
# (a crossed book); every other frame is a delta, and a "gap" skips a sequence number.
grid_level = st.tuples(
    st.integers(2, 80).map(lambda half_ticks: D(half_ticks) / 2),
    st.sampled_from([D(0), D("0.5"), D(1), D("1.25"), D(3)]),
)
side_levels = st.lists(grid_level, max_size=8)
frame = st.tuples(
    st.sampled_from(["snapshot"] + ["delta"] * 8 + ["gap"]),
    side_levels,
    side_levels.map(lambda rows: [(p + 38, s) for p, s in rows]),
)


def apply_both(book: OrderBook, reference: ReferenceBook, kind: str, bids, asks) -> None:
    """One frame to both books: they must raise BookGap together or not at all."""
    if kind == "snapshot":
        seq = (reference.seq or 0) + 1
        calls = (lambda: book.apply_snapshot(bids, asks, seq), lambda: reference.snapshot(bids, asks, seq))
    else:
        seq = (reference.seq or 0) + (2 if kind == "gap" else 1)
        calls = (lambda: book.apply_delta(bids, asks, seq), lambda: reference.delta(bids, asks, seq))
    outcomes = []
    for call in calls:
        try:
            call()
            outcomes.append("applied")
        except BookGap:
            outcomes.append("gap")
    assert outcomes[0] == outcomes[1]


@settings(max_examples=300, deadline=None)
@given(
    first=side_levels,
    frames=st.lists(frame, max_size=30),
    sizes=st.lists(st.decimals(min_value=D("0.01"), max_value=D(12), places=2), min_size=1, max_size=4),
)
def test_optimised_book_equals_a_naive_reference(first, frames, sizes):
    book, reference = OrderBook("v", "m"), ReferenceBook()
    for kind, bids, asks in [("snapshot", first, [(p + 38, s) for p, s in first]), *frames]:
        apply_both(book, reference, kind, bids, asks)
        assert book.valid == reference.valid
        for name in ("bids", "asks"):
            assert [(lvl.price, lvl.size) for lvl in book.levels(name)] == reference.levels(name)
            assert dict(getattr(book, name)) == reference.sides[name]
        best_bid, best_ask = reference.levels("bids")[:1], reference.levels("asks")[:1]
        assert [(lvl.price, lvl.size) for lvl in filter(None, [book.best_bid()])] == best_bid
        assert [(lvl.price, lvl.size) for lvl in filter(None, [book.best_ask()])] == best_ask
        for size in sizes:
            for side in ("BUY", "SELL"):
                assert book.vwap(side, size) == reference.vwap(side, size)
                assert book.worst_price(side, size) == reference.worst_price(side, size)


def test_book_sides_are_read_only_views():
    b = book([("99", "1")], [("101", "1")])
    with pytest.raises(TypeError):
        b.bids[D(100)] = D(1)  # type: ignore[index]
    assert b.levels("bids", depth=1)[0].price == D(99) and "99" in repr(b)
