"""The live daily mark-to-market curve: worked examples a trader can check by hand, and the property that
its last day is the Statistics report's net P&L for the same view and marks."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from core.candles.candle import ClosedCandle
from core.candles.marks import StoredPrices
from core.candles.store import store_candles
from core.infra.bus import book_key
from core.infra.db import get_engine
from core.ledger.daily import midnight, stored_day_closes, view_days, view_days_of_books
from core.ledger.entries import MANUAL, LedgerFill, Source, classify
from core.ledger.fifo import book_key as ledger_book_key
from core.ledger.fifo import one_book
from core.ledger.report import Range, build_report

D = Decimal
DAY1 = date(2025, 3, 1)
BOT = Source("bot", "7", "Bot · trend")
LEDGER = D("1e-18")


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=UTC)


def fill(
    n: int,
    side: str,
    quantity: str | Decimal,
    price: str | Decimal,
    when: datetime,
    *,
    fee: str | Decimal = "0",
    fee_asset: str | None = "USDT",
    symbol: str = "BTCUSDT",
    quote: str = "USDT",
    source: Source = MANUAL,
    broker_id: int = 1,
) -> LedgerFill:
    return LedgerFill(
        n,
        broker_id,
        symbol,
        symbol[: -len(quote)],
        quote,
        side,
        D(quantity),
        D(price),
        when,
        D(fee),
        fee_asset,
        1000 + n,
        source,
    )


def daily_curves(fills, window, today, day_close, latest, side=None):
    """The whole view's curve per quote asset, as the page's charts draw it."""
    return view_days(fills, window, today, day_close, latest, side).curves()


def closes(table: dict[tuple[str, int], str]):
    """day closes by (symbol, day of March)."""

    def close(key, day: date) -> Decimal | None:
        value = table.get((key[1], day.day))
        return None if value is None else D(value)

    return close


ROUND_TRIP = [fill(1, "buy", "1", "100", at(1)), fill(2, "sell", "1", "120", at(3), fee="0.12")]
DAY_CLOSES = closes({("BTCUSDT", 1): "110", ("BTCUSDT", 2): "90", ("BTCUSDT", 3): "125"})


def test_a_round_trip_over_three_days_marked_at_each_close():
    curves = daily_curves(ROUND_TRIP, Range(), date(2025, 3, 4), DAY_CLOSES, {})
    curve = curves["USDT"]
    # Day 1: 1 × 110 − 100 = 10 open; day 2: 1 × 90 − 100 = −10; day 3: 120 − 0.12 − 100 realised.
    assert [(p.day.day, p.realised, p.unrealised) for p in curve.points] == [
        (1, 0, 10),
        (2, 0, -10),
        (3, D("19.88"), 0),
        (4, D("19.88"), 0),
    ]
    assert [change for _, change in curve.changes()] == [10, -20, D("29.88"), 0]
    assert [down for _, down in curve.drawdown()] == [0, -20, 0, 0]
    assert curve.capital == 100
    assert curve.days_in_market == 2
    assert curve.unmarked == []


def test_a_range_counts_its_own_closings_and_the_positions_it_starts_with():
    window = Range(datetime(2025, 3, 2, tzinfo=UTC), datetime(2025, 3, 3, tzinfo=UTC))
    (point,) = daily_curves(ROUND_TRIP, window, date(2025, 3, 4), DAY_CLOSES, {})["USDT"].points
    assert (point.day, point.realised, point.unrealised) == (date(2025, 3, 2), 0, -10)
    later = Range(datetime(2025, 3, 3, tzinfo=UTC), None)
    points = daily_curves(ROUND_TRIP, later, date(2025, 3, 4), DAY_CLOSES, {})["USDT"].points
    assert [p.pnl for p in points] == [D("19.88"), D("19.88")]


def test_today_is_marked_at_the_latest_price_and_a_base_fee_is_not_held():
    fills = [fill(1, "buy", "2", "50", at(1), fee="0.002", fee_asset="BTC")]
    curve = daily_curves(fills, Range(), DAY1, closes({("BTCUSDT", 1): "55"}), {(1, "BTCUSDT"): D("60")})["USDT"]
    # holds 1.998 BTC that cost 100: 1.998 × 60 − 100
    assert [p.pnl for p in curve.points] == [D("19.88")]


def test_a_day_without_a_stored_close_carries_the_last_one_and_no_close_at_all_counts_at_cost():
    fills = [fill(1, "buy", "1", "100", at(1)), fill(2, "buy", "10", "5", at(1), symbol="ETHUSDT")]
    curve = daily_curves(fills, Range(), date(2025, 3, 3), closes({("BTCUSDT", 1): "104"}), {})["USDT"]
    assert [p.unrealised for p in curve.points] == [4, 4, 4]
    assert curve.unmarked == ["ETHUSDT"]
    assert curve.capital == 150


def test_the_side_keeps_long_or_short_books_only():
    fills = [
        fill(1, "buy", "1", "100", at(1)),
        fill(2, "sell", "1", "100", at(1), source=BOT),
        fill(3, "buy", "1", "80", at(2), source=BOT),
    ]
    marks = closes({("BTCUSDT", 1): "90", ("BTCUSDT", 2): "85"})
    longs = daily_curves(fills, Range(), date(2025, 3, 2), marks, {}, side="buy")["USDT"]
    shorts = daily_curves(fills, Range(), date(2025, 3, 2), marks, {}, side="sell")["USDT"]
    assert [p.pnl for p in longs.points] == [-10, -15]
    assert [(p.realised, p.unrealised) for p in shorts.points] == [(0, 10), (20, 0)]


def test_each_quote_asset_has_its_own_curve():
    fills = [fill(1, "buy", "1", "100", at(1)), fill(2, "buy", "1", "0.05", at(1), symbol="ETHBTC", quote="BTC")]
    curves = daily_curves(fills, Range(), DAY1, closes({}), {(1, "BTCUSDT"): D("101"), (1, "ETHBTC"): D("0.06")})
    assert {quote: [p.pnl for p in c.points] for quote, c in curves.items()} == {"USDT": [1], "BTC": [D("0.01")]}


def test_no_fills_a_future_range_or_only_incomplete_fills_give_no_curve():
    assert daily_curves([], Range(), DAY1, closes({}), {}) == {}
    future = Range(datetime(2025, 4, 1, tzinfo=UTC), None)
    assert daily_curves(ROUND_TRIP, future, date(2025, 3, 4), DAY_CLOSES, {}) == {}
    assert daily_curves([fill(1, "buy", "1", "0", at(1))], Range(), DAY1, closes({}), {}) == {}


# ---- the last day is the report's net P&L ----------------------------------------------------------

SOURCES = [MANUAL, BOT]


@st.composite
def views(draw):
    fills = []
    for n in range(draw(st.integers(1, 14))):
        symbol = draw(st.sampled_from(["BTCUSDT", "ETHUSDT"]))
        quantity = draw(st.decimals(min_value=D("0.001"), max_value=D("3"), places=3))
        fee_in_base = draw(st.booleans())
        fills.append(
            fill(
                n + 1,
                draw(st.sampled_from(["buy", "sell"])),
                quantity,
                draw(st.decimals(min_value=D("1"), max_value=D("500"), places=2)),
                at(1) + timedelta(hours=draw(st.integers(0, 24 * 9))),
                fee=quantity / 1000 if fee_in_base else draw(st.decimals(min_value=0, max_value=D("1"), places=4)),
                fee_asset=symbol[:3] if fee_in_base else "USDT",
                symbol=symbol,
                source=draw(st.sampled_from(SOURCES)),
                broker_id=draw(st.sampled_from([1, 2])),
            )
        )
    start = draw(st.one_of(st.none(), st.integers(1, 10)))
    window = Range(None if start is None else datetime(2025, 3, start, tzinfo=UTC), None)
    marks = {
        (b, s): draw(st.decimals(min_value=D("1"), max_value=D("500"), places=2))
        for b in (1, 2)
        for s in ("BTCUSDT", "ETHUSDT")
    }
    return fills, window, marks, draw(st.sampled_from([None, "buy", "sell"]))


@settings(max_examples=150, deadline=None)
@given(views())
def test_the_last_day_is_the_reports_net_pnl(view):
    fills, window, marks, side = view
    today = date(2025, 3, 11)
    curves = daily_curves(fills, window, today, closes({("BTCUSDT", 5): "42"}), marks, side)
    report = build_report(fills, window, marks, side=side)
    for total in report.totals:
        assert total.total is not None
        assert curves[total.quote].points[-1].day == today
        assert curves[total.quote].points[-1].pnl.quantize(LEDGER) == total.total.quantize(LEDGER)
    assert set(curves) == {total.quote for total in report.totals}


@settings(max_examples=60, deadline=None)
@given(views())
def test_a_selection_of_books_is_the_curve_of_their_fills_alone(view):
    """The page walks the view once and adds up each strategy's or bot's books: the same curve as walking
    that source's fills alone over the view's days (from its first fill's day when the range has no start)."""
    fills, window, marks, side = view
    today, day_closes = date(2025, 3, 11), closes({("BTCUSDT", 4): "40", ("ETHUSDT", 6): "300"})
    walked = view_days(fills, window, today, day_closes, marks, side)
    days = Range(window.start or midnight(min(f.traded_at for f in fills).date()), window.end)
    for source in SOURCES:
        alone = daily_curves([f for f in fills if f.source == source], days, today, day_closes, marks, side)
        chosen = walked.curves(lambda key, source=source: key[2] == source.key)
        assert chosen.keys() == alone.keys()
        for quote, curve in alone.items():
            assert [(p.day, p.realised, p.unrealised) for p in chosen[quote].points] == [
                (p.day, p.realised, p.unrealised) for p in curve.points
            ]
            assert (chosen[quote].capital, chosen[quote].days_in_market) == (curve.capital, curve.days_in_market)


@settings(max_examples=100, deadline=None)
@given(views())
def test_the_kept_ledgers_books_walk_to_the_days_their_fills_walk_to(view):
    """The page walks the kept ledger's books (core/ledger/cache.py, matched once with their trace): the
    same days, sums, positions and costs as walking the fills."""
    fills, window, marks, side = view
    today, day_closes = date(2025, 3, 11), closes({("BTCUSDT", 4): "40", ("ETHUSDT", 6): "300"})
    walked = view_days(fills, window, today, day_closes, marks, side)
    groups: dict = {}
    for one in classify(fills).usable:
        groups.setdefault(ledger_book_key(one), []).append(one)
    books = {key: one_book(group, traced=True) for key, group in groups.items()}
    kept = view_days_of_books(books, window, today, day_closes, marks, side)
    assert kept.days == walked.days and list(kept.books) == list(walked.books)
    for key, book in walked.books.items():
        again = kept.books[key]
        assert (again.gained, again.open_value, again.held) == (book.gained, book.open_value, book.held)
        assert (again.cost_moves, again.unmarked) == (book.cost_moves, book.unmarked)


# ---- the stored closes ---------------------------------------------------------------------------------

HOUR_MS = 3_600_000


def test_each_days_close_is_the_heartbeats_last_candle_closed_by_midnight(infra, redis_client):
    symbol = f"Z{secrets.token_hex(3).upper()}USDT"  # a listing of the heartbeat (sim) no other test writes
    march1 = int(datetime(2025, 3, 1, tzinfo=UTC).timestamp() * 1000)
    candles = [
        ClosedCandle("sim", symbol, "4h", march1 + i * 4 * HOUR_MS, D(1), D(99), D(1), D(10 + i), D(1))
        for i in range(6)
    ]
    candles.append(ClosedCandle("sim", symbol, "4h", march1 + 48 * HOUR_MS, D(1), D(99), D(1), D(20), D(1)))
    store_candles(get_engine(), candles)
    redis_client.set(book_key("sim", symbol), json.dumps({"bid": "30", "ask": "32"}))
    with get_engine().connect() as conn:
        prices = StoredPrices(conn, redis_client)
        close, latest = stored_day_closes(
            prices, {1: "sim", 2: "kraken"}, [(1, symbol), (2, "NOPEXYZ")], date(2025, 2, 28), date(2025, 3, 3)
        )
        # Feb 28: nothing stored yet; Mar 1: the 20:00 candle (closed at midnight); Mar 2: none, the last one
        # carries; Mar 3: its 00:00 candle is the last closed by midnight (the feeds store closed candles only).
        assert [close((1, symbol), date(2025, 3, d) if d else date(2025, 2, 28)) for d in (0, 1, 2, 3)] == [
            None,
            15,
            15,
            20,
        ]
        assert latest == {(1, symbol): 31, (2, "NOPEXYZ"): None}
        assert close((2, "NOPEXYZ"), date(2025, 3, 1)) is None
