"""The bot's position and P&L from its fills (average cost; spot fees in the asset received)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from core.bots.position import position_from_fills
from core.pnl.fills import TradeFill

D = Decimal


def test_a_buy_with_its_fee_in_the_base_asset_holds_less_at_a_higher_entry():
    position = position_from_fills([TradeFill("buy", D("1"), D("100"), D("0.001"), "BTC")], "BTC")
    assert position.quantity == D("0.999")
    assert position.entry_price == D("100") / D("0.999")
    assert position.fees_quote == D("0.1")


def test_a_round_trip_realizes_the_price_difference_less_fees():
    fills = [TradeFill("buy", D("2"), D("100"), D("0"), "BTC"), TradeFill("sell", D("2"), D("110"), D("0.22"), "USDT")]
    position = position_from_fills(fills, "BTC")
    assert position.quantity == 0 and position.entry_price is None
    assert position.realized_pnl == D("20") - D("0.22")


def test_selling_more_than_the_bot_bought_never_goes_short():
    fills = [TradeFill("buy", D("1"), D("100"), D("0"), "BTC"), TradeFill("sell", D("3"), D("90"), D("0"), "USDT")]
    position = position_from_fills(fills, "BTC")
    assert position.quantity == 0 and position.realized_pnl == D("-10")


amounts = st.decimals(min_value=D("0.001"), max_value=D("10"), places=3)
prices = st.decimals(min_value=D("1"), max_value=D("100000"), places=2)


@given(st.lists(st.tuples(st.sampled_from(["buy", "sell"]), amounts, prices), max_size=30), prices)
def test_realized_plus_unrealized_is_the_cash_flow_plus_what_is_held(trades, mark):
    """Without fees: P&L = money in from sells - money out on buys + holding valued at `mark`."""
    fills, held, cash = [], D(0), D(0)
    for side, quantity, price in trades:
        if side == "sell":
            quantity = min(quantity, held)
            if quantity <= 0:
                continue
        fills.append(TradeFill(side, quantity, price, D(0), "USDT"))
        held += quantity if side == "buy" else -quantity
        cash += quantity * price if side == "sell" else -quantity * price
    position = position_from_fills(fills, "BTC")
    assert position.quantity == held
    total = position.realized_pnl + (position.unrealized_pnl(mark) or 0)
    assert abs(total - (cash + held * mark)) < D("1e-12")
