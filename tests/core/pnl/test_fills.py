"""One inventory arithmetic for every position: the statistics' FIFO books, a bot's average-cost
position and a webhook's net position count the same base asset for the same fills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from core.bots.position import position_from_fills
from core.pnl.fifo import match_books
from core.pnl.fills import TradeFill, inventory_change, net_quantity
from core.pnl.ledger import LedgerFill, ledger_problem

D = Decimal
T0 = datetime(2025, 1, 1, tzinfo=UTC)

amounts = st.decimals(min_value=D("0.001"), max_value=D("10"), places=3)
prices = st.decimals(min_value=D("1"), max_value=D("100000"), places=2)
fees = st.decimals(min_value=D("0"), max_value=D("0.0009"), places=4)
trades = st.lists(
    st.tuples(st.sampled_from(["buy", "sell"]), amounts, prices, fees, st.sampled_from(["BTC", "USDT", None, "BNB"])),
    max_size=30,
)


def ledger_fill(n: int, fill: TradeFill) -> LedgerFill:
    return LedgerFill(
        n, 1, "BTCUSDT", "BTC", "USDT", fill.side, fill.quantity, fill.price, fill.traded_at, fill.fee, fill.fee_asset
    )


def trade_fills(rows) -> list[TradeFill]:
    return [
        TradeFill(side, quantity, price, fee, asset, T0 + timedelta(minutes=n))
        for n, (side, quantity, price, fee, asset) in enumerate(rows)
    ]


def test_a_base_fee_is_not_held_either_way():
    assert inventory_change("buy", D("1"), D("0.001"), "BTC", "BTC") == D("0.999")
    assert inventory_change("sell", D("1"), D("0.001"), "BTC", "BTC") == D("-1.001")
    assert inventory_change("buy", D("1"), D("0.1"), "USDT", "BTC") == D("1")
    assert inventory_change("buy", D("1"), D("0.001"), "BTC", None) == D("1")  # base unknown: no base fee


@given(trades)
def test_net_quantity_is_what_the_fifo_book_holds(rows):
    fills = trade_fills(rows)
    ledger = [ledger_fill(n, f) for n, f in enumerate(fills)]
    assert all(ledger_problem(f) is None for f in ledger)
    books = match_books(ledger)
    held = next(iter(books.values())).quantity if books else D(0)
    assert net_quantity(fills, "BTC") == held


@given(trades)
def test_a_long_only_bot_holds_the_net_quantity_and_realises_the_fifo_pnl_once_flat(rows):
    """A bot never sells more than it holds and pays a sell's fee in quote: then its average-cost
    position holds what the FIFO book holds, and a flat bot has realised what the FIFO book realised."""
    fills, held = [], D(0)
    for n, (side, quantity, price, fee, asset) in enumerate(rows):
        if side == "sell":
            quantity, asset = min(quantity, held), "USDT"
            if quantity <= 0:
                continue
        elif asset == "BNB":
            asset = "USDT"
        fill = TradeFill(side, quantity, price, fee, asset, T0 + timedelta(minutes=n))
        fills.append(fill)
        held += inventory_change(side, quantity, fee, asset, "BTC")
    position = position_from_fills(fills, "BTC")
    assert position.quantity == net_quantity(fills, "BTC") == held
    if held == 0 and fills:
        book = next(iter(match_books(ledger_fill(n, f) for n, f in enumerate(fills)).values()))
        assert abs(position.realized_pnl - book.realised) < D("1e-12")
