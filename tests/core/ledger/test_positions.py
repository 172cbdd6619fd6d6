"""One ledger for every position: a bot's or a webhook's position (core.ledger.positions) is the FIFO
book the Statistics page matches; base-fee dust never turns into a short; P&L balances the cash flows;
splitting a fill in parts changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from core.ledger.entries import LedgerFill, Source, incomplete_reason
from core.ledger.fifo import match_books
from core.ledger.fills import inventory_change
from core.ledger.positions import position_from_fills
from core.ledger.report import build_report

D = Decimal
T0 = datetime(2025, 1, 1, tzinfo=UTC)
BOT = Source("bot", "7", "Bot · trend")
MARK = {(1, "BTCUSDT"): D("100")}


def fill(
    n: int, side: str, quantity, price, fee="0", fee_asset: str | None = "USDT", *, order: int | None = None
) -> LedgerFill:
    return LedgerFill(
        n,
        1,
        "BTCUSDT",
        "BTC",
        "USDT",
        side,
        D(quantity),
        D(price),
        T0 + timedelta(minutes=n),
        D(fee),
        fee_asset,
        order if order is not None else 1000 + n,
        BOT,
    )


def close(a: Decimal | None, b: Decimal | None) -> bool:
    return a is not None and b is not None and abs(a - b) < D("1e-20")


def test_a_base_fee_is_not_held_either_way():
    assert inventory_change("buy", D("1"), D("0.001"), "BTC", "BTC") == D("0.999")
    assert inventory_change("sell", D("1"), D("0.001"), "BTC", "BTC") == D("-1.001")
    assert inventory_change("buy", D("1"), D("0.1"), "USDT", "BTC") == D("1")
    assert inventory_change("buy", D("1"), D("0.001"), "BTC", None) == D("1")  # base unknown: no base fee


def test_a_buy_with_its_fee_in_the_base_asset_holds_less_at_a_higher_entry():
    position = position_from_fills([fill(1, "buy", "1", "100", "0.001", "BTC")])
    assert position.quantity == D("0.999")
    assert close(position.entry_price, D("100") / D("0.999"))
    assert position.fees_quote == D("0.1") and position.entry_time == T0 + timedelta(minutes=1)


def test_a_round_trip_realizes_the_price_difference_less_fees():
    position = position_from_fills([fill(1, "buy", "2", "100"), fill(2, "sell", "2", "110", "0.22")])
    assert position.quantity == 0 and position.entry_price is None and position.entry_time is None
    assert position.realized_pnl == D("20") - D("0.22") and position.unrealized_pnl(D("1")) == 0


def test_selling_the_ordered_quantity_after_a_base_fee_is_one_long_round_trip_not_a_short():
    """Issue 19: a webhook buy of 0.001 BTC (fee 0.000001 BTC), then a sell of 0.001, showed 'short 0.000001'."""
    fills = [fill(1, "buy", "0.001", "50000", "0.000001", "BTC"), fill(2, "sell", "0.001", "51000", "0.051")]
    position = position_from_fills(fills)
    assert position.quantity == 0 and position.entry_price is None
    report = build_report(fills, marks=MARK)
    assert report.positions == []
    [trip] = report.trips
    assert (trip.direction, trip.quantity) == ("long", D("0.001"))
    # 0.000999 BTC bought at 50 000 for 50 USDT sold at 51 000, the dust sold at 51 000 (no gain), fees.
    assert trip.pnl == position.realized_pnl == D("0.000999") * 51000 - 50 - D("0.051")
    [book] = match_books(fills).values()
    assert (book.unheld, book.unheld_value) == (D("0.000001"), D("0.051"))


def test_a_new_sell_order_on_a_flat_book_is_a_short_sale_dust_or_not():
    fills = [fill(1, "buy", "1", "100", "0.001", "BTC"), fill(2, "sell", "0.999", "100"), fill(3, "sell", "0.01", "90")]
    position = position_from_fills(fills)
    assert position.quantity == D("-0.01") and position.entry_price == 90
    assert position.unrealized_pnl(D("80")) == D("0.1")


def test_a_fee_in_a_third_asset_is_unvalued_and_kept_apart():
    position = position_from_fills(
        [fill(1, "buy", "1", "100", "0.02", "BNB"), fill(2, "sell", "1", "105", "0.02", "BNB")]
    )
    assert position.realized_pnl == 5 and position.fees_quote == 0
    assert position.unvalued_fees == (("BNB", D("0.04")),)


def test_rows_the_ledger_cannot_use_are_left_out_and_named():
    position = position_from_fills([fill(1, "buy", "1", "100"), fill(2, "buy", "0", "100")])
    assert position.quantity == 1 and position.fills == 1
    assert position.problems == ("fill #2: quantity and price must be positive",)


# ---- properties -------------------------------------------------------------------------------------

amounts = st.decimals(min_value=D("0.001"), max_value=D("3"), places=3)
prices = st.decimals(min_value=D("1"), max_value=D("1000"), places=2)
fee_assets = st.sampled_from(["BTC", "USDT", None, "BNB"])


@st.composite
def sequences(draw):
    """One source's fills: buys and sells of random sizes; a sell may be the *ordered* quantity still
    open (what was bought, base fees ignored: the dust case) or any size (then it may go short)."""
    fills, ordered = [], D(0)
    for n in range(draw(st.integers(1, 10))):
        side = draw(st.sampled_from(["buy", "sell"]))
        quantity = ordered if side == "sell" and ordered > 0 and draw(st.booleans()) else draw(amounts)
        asset = draw(fee_assets)
        fee = (quantity * draw(st.sampled_from([D("0"), D("0.001")]))).quantize(D("1e-9"))
        if asset in ("USDT", None):
            fee *= 100
        fills.append(fill(n * 10, side, quantity, draw(prices), fee, asset))
        ordered += quantity if side == "buy" else -quantity
    return fills


def split(fills: list[LedgerFill], index: int, parts: int) -> list[LedgerFill]:
    """Fill `index` as `parts` equal fills of the same order at the same time, each with its share of the
    fee (`parts` divides 10^k: the shares are exact, as a venue's pro rata fee would be)."""
    whole = fills[index]
    quantities, fees = [whole.quantity / parts] * parts, [whole.fee / parts] * parts
    pieces = [
        LedgerFill(
            whole.fill_id + k,
            whole.broker_id,
            whole.symbol,
            whole.base,
            whole.quote,
            whole.side,
            q,
            whole.price,
            whole.traded_at,
            f,
            whole.fee_asset,
            whole.order_id,
            whole.source,
        )
        for k, (q, f) in enumerate(zip(quantities, fees, strict=True))
    ]
    return [*fills[:index], *pieces, *fills[index + 1 :]]


@given(sequences(), prices)
@settings(max_examples=60, deadline=None)
def test_the_position_is_the_statistics_book_and_pnl_balances_the_cash_flows(fills, mark):
    # The Statistics page leaves out (and lists) the fills the venue answered incompletely (a fee without
    # its asset); on the rest it is the position exactly.
    complete = [f for f in fills if incomplete_reason(f) is None]
    report = build_report(fills, marks={(1, "BTCUSDT"): mark})
    assert [item.fill for item in report.incomplete] == [f for f in fills if incomplete_reason(f) is not None]
    if complete:
        counted = position_from_fills(complete)
        [row] = report.by_source
        assert row.realised == counted.realized_pnl and row.fees == counted.fees_quote
        held = report.positions[0].quantity if report.positions else D(0)
        assert held == counted.quantity
        assert close(row.unrealised, counted.unrealized_pnl(mark))
    else:
        assert report.by_source == [] and report.positions == []
    position = position_from_fills(fills)  # a position takes a fee without its asset as quote
    # realised + unrealised + fees paid in quote = sells − buys (notional) + what is held at the mark,
    # less the base-fee dust sold from outside the book (entered at the price it was sold at).
    [book] = match_books(fills).values()
    notional = sum((f.quantity * f.price if f.side == "sell" else -f.quantity * f.price for f in fills), D(0))
    quote_fees = sum((f.quote_fee for f in fills), D(0))
    balance = notional + position.quantity * mark - book.unheld_value
    assert close(position.realized_pnl + position.unrealized_pnl(mark) + quote_fees, balance)


@given(sequences(), st.data())
@settings(max_examples=60, deadline=None)
def test_splitting_a_fill_in_parts_never_changes_the_result(fills, data):
    index = data.draw(st.integers(0, len(fills) - 1))
    parts = data.draw(st.sampled_from([2, 4, 5]))
    whole, pieces = position_from_fills(fills), position_from_fills(split(fills, index, parts))
    assert pieces.quantity == whole.quantity and pieces.fees_quote == whole.fees_quote
    assert close(pieces.realized_pnl, whole.realized_pnl)
    assert close(pieces.unrealized_pnl(D("123")), whole.unrealized_pnl(D("123")))
    assert pieces.entry_time == whole.entry_time
