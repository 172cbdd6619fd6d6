"""FIFO lot matching and P&L from the fill ledger: properties over random fill sequences, and the
worked examples a trader would check by hand (partial closes, fees in base vs quote, sources, ranges)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from core.ledger.entries import MANUAL, LedgerFill, Source, ledger_problem, split_symbol
from core.ledger.fifo import match_books, round_trips, trip_stats
from core.ledger.report import Range, build_report, plain, trips_csv

D = Decimal
T0 = datetime(2025, 1, 1, tzinfo=UTC)
BOT = Source("bot", "7", "Bot · trend")
LEDGER = D("1e-18")


def fill(
    n: int,
    side: str,
    quantity: str | Decimal,
    price: str | Decimal,
    fee: str | Decimal = "0",
    fee_asset: str | None = "USDT",
    *,
    source: Source = MANUAL,
    order_id: int | None = None,
    symbol: str = "BTCUSDT",
    broker_id: int = 1,
    minutes: int | None = None,
) -> LedgerFill:
    return LedgerFill(
        fill_id=n,
        broker_id=broker_id,
        symbol=symbol,
        base=symbol[:-4],
        quote="USDT",
        side=side,
        quantity=D(quantity),
        price=D(price),
        traded_at=T0 + timedelta(minutes=n if minutes is None else minutes),
        fee=D(fee),
        fee_asset=fee_asset,
        order_id=order_id if order_id is not None else 1000 + n,
        source=source,
    )


def same(a: Decimal, b: Decimal) -> bool:
    """Equal at the ledger's precision (18 places): partial closes divide, sums then round at 60 digits."""
    return a.quantize(LEDGER) == b.quantize(LEDGER)


def only_book(fills):
    books = match_books(fills)
    assert len(books) == 1
    return next(iter(books.values()))


# ---- properties -------------------------------------------------------------------------------------

quantities = st.decimals(min_value=D("0.0001"), max_value=D("5"), places=4)
prices = st.decimals(min_value=D("1"), max_value=D("90000"), places=2)
fee_rates = st.sampled_from([D("0"), D("0.001"), D("0.00075"), D("0.002")])


@st.composite
def quote_fee_sequences(draw):
    """Random buys and sells (fees in quote), closed by a last fill that brings the book back to flat."""
    fills, inventory = [], D(0)
    for n in range(draw(st.integers(1, 12))):
        side = draw(st.sampled_from(["buy", "sell"]))
        quantity, price = draw(quantities), draw(prices)
        fee = (quantity * price * draw(fee_rates)).quantize(D("0.00000001"))
        fills.append(fill(n, side, quantity, price, fee))
        inventory += quantity if side == "buy" else -quantity
    if inventory != 0:
        price = draw(prices)
        fills.append(
            fill(
                99,
                "sell" if inventory > 0 else "buy",
                abs(inventory),
                price,
                (abs(inventory) * price * D("0.001")).quantize(D("0.00000001")),
            )
        )
    return fills


@given(quote_fee_sequences())
@settings(max_examples=150, deadline=None)
def test_a_closed_sequence_realises_sell_proceeds_minus_buy_costs_minus_fees(fills):
    book = only_book(fills)
    assert book.quantity == 0 and not book.lots
    proceeds = sum(f.quantity * f.price for f in fills if f.side == "sell")
    costs = sum(f.quantity * f.price for f in fills if f.side == "buy")
    fees = sum(f.fee for f in fills)
    assert same(book.realised, proceeds - costs - fees)
    report = build_report(fills)
    assert same(report.totals[0].realised, proceeds - costs - fees)
    assert report.totals[0].fees == fees
    assert report.positions == []


@st.composite
def mixed_fee_sequences(draw):
    """Long-only trading where buys may pay their fee in BTC (the base) and sells in USDT; any end state."""
    fills, inventory = [], D(0)
    for n in range(draw(st.integers(1, 12))):
        quantity, price = draw(quantities), draw(prices)
        if inventory > quantity and draw(st.booleans()):
            fee = (quantity * price * draw(fee_rates)).quantize(D("0.00000001"))
            fills.append(fill(n, "sell", quantity, price, fee, "USDT"))
            inventory -= quantity
        else:
            in_base = draw(st.booleans())
            fee = (
                (quantity * draw(fee_rates)).quantize(D("0.00000001"))
                if in_base
                else (quantity * price * draw(fee_rates)).quantize(D("0.00000001"))
            )
            fills.append(fill(n, "buy", quantity, price, fee, "BTC" if in_base else "USDT"))
            inventory += quantity - (fee if in_base else 0)
    return fills, inventory, draw(prices)


@given(mixed_fee_sequences())
@settings(max_examples=150, deadline=None)
def test_base_fees_shrink_the_position_and_realised_plus_unrealised_is_the_cash_and_holding_value(case):
    fills, inventory, mark = case
    book = only_book(fills)
    assert book.quantity == inventory
    report = build_report(fills, marks={(1, "BTCUSDT"): mark})
    cash = sum(
        (f.quantity * f.price if f.side == "sell" else -f.quantity * f.price) - (f.fee if f.fee_asset == "USDT" else 0)
        for f in fills
    )
    total = report.totals[0]
    # Matching only splits P&L between realised and unrealised: their sum is what the account really made.
    assert same(total.total, cash + inventory * mark)
    valued = sum(f.fee * f.price if f.fee_asset == "BTC" else f.fee for f in fills)
    assert total.fees == valued
    if inventory:
        [position] = report.positions
        assert position.quantity == inventory and position.mark == mark
    else:
        assert report.positions == []


@given(quote_fee_sequences(), st.integers(0, 12))
@settings(max_examples=80, deadline=None)
def test_the_cumulative_chart_ends_at_the_realised_total_with_increasing_times(fills, cut):
    window = Range(start=T0 + timedelta(minutes=cut))
    report = build_report(fills, window)
    series = report.chart.get("USDT", [])
    times = [second for second, _ in series]
    assert times == sorted(set(times))
    assert same(series[-1][1] if series else D(0), report.totals[0].realised)
    assert same(report.totals[0].realised, sum(t.pnl for t in report.trips))


# ---- worked examples ---------------------------------------------------------------------------------


def test_partial_closes_take_the_oldest_lots_first_and_keep_the_rest_open():
    fills = [
        fill(1, "buy", "1", "100", "0.1"),
        fill(2, "buy", "1", "110", "0.11"),
        fill(3, "sell", "1.5", "120", "0.18"),
    ]
    book = only_book(fills)
    first, second = book.closings
    assert (first.quantity, first.entry_price, second.quantity, second.entry_price) == (1, 100, D("0.5"), 110)
    # lot 1: 120 - 100 - 0.1 entry fee - 2/3 of the sell fee; lot 2: half of 110 + half its fee, 1/3 of the sell fee
    assert first.pnl == D("120") - D("100.1") - D("0.12")
    assert second.pnl == D("60") - D("55.055") - D("0.06")
    [lot] = book.lots
    assert (lot.quantity, lot.price, -lot.cash) == (D("0.5"), 110, D("55.055"))
    [trip] = round_trips(book)
    assert trip.quantity == D("1.5") and trip.exit_price == 120
    assert trip.entry_price.quantize(D("0.0001")) == D("103.3333")
    assert trip.pnl == first.pnl + second.pnl and trip.fees == D("0.1") + D("0.055") + D("0.18")

    report = build_report(fills, marks={(1, "BTCUSDT"): D("130")})
    [position] = report.positions
    assert position.unrealised == D("0.5") * 130 - D("55.055")
    assert report.by_symbol[0].unrealised == position.unrealised


def test_a_fee_in_base_is_valued_at_the_fill_price_and_a_fee_in_quote_as_is():
    # Buy 1 BTC @100 paying 0.001 BTC: 0.999 BTC arrive. Sell them @110 paying 0.10989 USDT.
    base_fee = [fill(1, "buy", "1", "100", "0.001", "BTC"), fill(2, "sell", "0.999", "110", "0.10989", "USDT")]
    report = build_report(base_fee)
    assert report.totals[0].fees == D("0.1") + D("0.10989")
    assert report.totals[0].realised == D("109.89") - D("100") - D("0.10989")
    assert report.positions == []
    # The same trade with the buy fee in quote: 1 BTC arrives, 0.1 USDT paid.
    quote_fee = [fill(1, "buy", "1", "100", "0.1", "USDT"), fill(2, "sell", "1", "110", "0.11", "USDT")]
    report = build_report(quote_fee)
    assert report.totals[0].fees == D("0.21")
    assert report.totals[0].realised == D("110") - D("100") - D("0.21")


def test_a_sell_fee_in_base_removes_it_from_the_position():
    book = only_book([fill(1, "buy", "2", "100"), fill(2, "sell", "1", "120", "0.01", "BTC")])
    assert book.quantity == D("0.99")
    assert book.realised == D("120") - D("101")  # 1.01 BTC left the position for 120 USDT


def test_a_fee_in_a_third_asset_is_reported_apart_and_left_out_of_pnl():
    report = build_report([fill(1, "buy", "1", "100", "0.02", "BNB"), fill(2, "sell", "1", "105", "0.02", "BNB")])
    total = report.totals[0]
    assert total.realised == 5 and total.fees == 0 and total.unvalued_fees == {"BNB": D("0.04")}


def test_round_trip_statistics_per_source():
    other = Source("webhook", "3", "Webhook · breakout")
    fills = [
        fill(1, "buy", "1", "100", source=BOT),
        fill(2, "sell", "1", "110", source=BOT),  # +10
        fill(3, "buy", "1", "100", source=BOT),
        fill(4, "sell", "1", "95", source=BOT),  # -5
        fill(5, "buy", "1", "100", source=BOT),
        fill(6, "sell", "1", "120", source=BOT),  # +20
        fill(7, "buy", "1", "100", source=other),
        fill(8, "sell", "1", "100", source=other),  # 0
    ]
    report = build_report(fills)
    by_source = {row.title: row for row in report.by_source}
    bot = by_source["Bot · trend"].trips
    assert (bot.count, bot.wins, bot.losses) == (3, 2, 1)
    assert bot.win_rate == D(2) / 3 and bot.average_win == 15 and bot.average_loss == -5
    assert bot.profit_factor == 6
    hook = by_source["Webhook · breakout"].trips
    assert (hook.count, hook.wins, hook.losses, hook.win_rate, hook.profit_factor) == (1, 0, 0, 0, None)
    assert by_source["Bot · trend"].realised == 25 and report.totals[0].trips.count == 4


def test_one_closing_order_filled_in_pieces_is_one_round_trip():
    fills = [
        fill(1, "buy", "2", "100"),
        fill(2, "sell", "0.5", "110", order_id=50),
        fill(3, "sell", "1.5", "112", order_id=50),
    ]
    [trip] = round_trips(only_book(fills))
    assert trip.quantity == 2 and trip.pnl == D("5") + D("18")
    assert trip.exit_price == (D("55") + D("168")) / 2
    assert trip_stats([trip]).wins == 1


def test_each_source_is_its_own_book_and_a_sale_of_another_sources_holding_opens_a_short():
    fills = [fill(1, "buy", "1", "100", source=BOT), fill(2, "sell", "1", "110")]
    report = build_report(fills, marks={(1, "BTCUSDT"): D("105")})
    bot, manual = sorted(report.positions, key=lambda p: p.source.kind)
    assert (bot.quantity, bot.unrealised) == (1, 5)
    assert (manual.quantity, manual.unrealised) == (-1, 5)
    assert report.totals[0].realised == 0 and report.totals[0].total == 10  # the account made 10
    # The manual short is covered by a later manual buy: a short round trip.
    report = build_report([*fills, fill(3, "buy", "1", "104")])
    [trip] = report.trips
    assert (trip.direction, trip.pnl) == ("short", 6)


def test_the_range_counts_closings_inside_it_against_entries_before_it():
    fills = [
        fill(1, "buy", "1", "100", minutes=0),
        fill(2, "sell", "0.5", "120", minutes=60),
        fill(3, "sell", "0.5", "130", minutes=180),
        fill(4, "buy", "1", "90", minutes=300),
    ]
    window = Range(T0 + timedelta(minutes=120), T0 + timedelta(minutes=240))
    report = build_report(fills, window)
    assert report.totals[0].realised == 15  # only the second half, against the entry at 100
    assert [t.closed_at for t in report.trips] == [T0 + timedelta(minutes=180)]
    assert report.positions == []  # the buy after the range's end is not in it


def test_no_price_for_an_open_position_leaves_unrealised_unknown_not_zero():
    report = build_report([fill(1, "buy", "1", "100")], marks={(1, "BTCUSDT"): None})
    assert report.totals[0].unrealised is None and report.totals[0].total is None
    assert report.positions[0].unrealised is None
    assert build_report([fill(1, "buy", "1", "100"), fill(2, "sell", "1", "100")]).totals[0].unrealised == 0


def test_pnl_in_different_quote_assets_is_never_added_together():
    eth_btc = LedgerFill(10, 1, "ETHBTC", "ETH", "BTC", "buy", D("1"), D("0.05"), T0, order_id=9)
    eth_btc_exit = LedgerFill(
        11, 1, "ETHBTC", "ETH", "BTC", "sell", D("1"), D("0.06"), T0 + timedelta(hours=1), order_id=10
    )
    report = build_report([fill(1, "buy", "1", "100"), fill(2, "sell", "1", "90"), eth_btc, eth_btc_exit])
    totals = {row.quote: row.realised for row in report.totals}
    assert totals == {"USDT": -10, "BTC": D("0.01")}
    assert set(report.chart) == {"USDT", "BTC"}


def test_bad_ledger_rows_are_listed_and_the_rest_still_counts():
    bad = [
        fill(2, "hold", "1", "100"),
        fill(3, "sell", "0", "100"),
        fill(4, "buy", "1", "-5"),
        fill(5, "buy", "1", "100", "-1"),
        fill(6, "buy", "0.5", "100", "0.5", "BTC"),
    ]
    assert [ledger_problem(f) is not None for f in bad] == [True] * 5
    report = build_report([fill(1, "buy", "1", "100"), *bad, fill(7, "sell", "1", "101")])
    assert len(report.problems) == 3 and "fill #2" in report.problems[0] and "unknown side" in report.problems[0]
    # no quantity, no price: the venue answered incompletely; listed apart, with the reason
    assert [(item.fill.fill_id, item.reason) for item in report.incomplete] == [(3, "no quantity"), (4, "no price")]
    assert report.totals[0].realised == 1


def test_incomplete_fills_are_left_out_of_every_total_and_listed():
    complete = [
        fill(1, "buy", "1", "100", "0.1"),
        fill(2, "sell", "1", "110", "0.11"),
        fill(5, "buy", "2", "50", "0.05", "BTC"),
    ]
    incomplete = [fill(3, "buy", "1", "0"), fill(4, "sell", "0.5", "120", "0.06", None)]
    marks = {(1, "BTCUSDT"): D("105")}
    with_them = build_report([*complete[:2], *incomplete, complete[2]], marks=marks)
    without = build_report(complete, marks=marks)
    assert [(i.fill.fill_id, i.reason) for i in with_them.incomplete] == [(3, "no price"), (4, "fee without its asset")]
    assert with_them.totals == without.totals and with_them.positions == without.positions
    assert with_them.trips == without.trips and with_them.chart == without.chart
    assert with_them.problems == [] and without.incomplete == []


def test_symbols_split_into_base_and_quote():
    assert split_symbol("BTCUSDT") == ("BTC", "USDT")
    assert split_symbol("ETHBTC") == ("ETH", "BTC")
    assert split_symbol("BTC-USD-PERP") == ("BTC", "USD")
    assert split_symbol("XBT/EUR") == ("XBT", "EUR")
    assert split_symbol("WEIRD") == ("WEIRD", "?")


def test_round_trips_export_as_csv_with_plain_decimals():
    report = build_report([fill(1, "buy", "0.5", "100", "0.05"), fill(2, "sell", "0.5", "110", "0.055")])
    rows = list(csv.DictReader(io.StringIO(trips_csv(report.trips, {1: "Sim"}))))
    assert rows == [
        {
            "closed_at": (T0 + timedelta(minutes=2)).isoformat(),
            "opened_at": (T0 + timedelta(minutes=1)).isoformat(),
            "broker": "Sim",
            "symbol": "BTCUSDT",
            "source": "Manual",
            "direction": "long",
            "quantity": "0.5",
            "entry_price": "100",
            "exit_price": "110",
            "fees": "0.105",
            "pnl": "4.895",
            "quote": "USDT",
        }
    ]
    assert plain(D("2.5E+3")) == "2500" and plain(None) == ""
