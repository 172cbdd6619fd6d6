"""The venue-neutral matching engine, driven directly with a fixed book (no protocol involved)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.spot.engine import MatchingEngine
from sim.spot.orders import (
    EngineError,
    Instrument,
    OcoLeg,
    OrderRequest,
    OrderType,
    Side,
    Status,
    TimeInForce,
)

BTC = Instrument("BTCUSDT", "BTC", "USDT", D("0.01"), D("0.0001"), D("0.0001"), D("1000"), D("5"))
BIDS = [(D("99"), D("1")), (D("98"), D("2")), (D("97"), D("5"))]
ASKS = [(D("101"), D("1")), (D("102"), D("2")), (D("103"), D("5"))]


def make_engine() -> MatchingEngine:
    engine = MatchingEngine(
        [BTC], book=lambda symbol: (BIDS, ASKS), clock=lambda: 1_000, last_price=lambda symbol: D("100")
    )
    engine.set_account("a", {"USDT": D("10000"), "BTC": D("10")})
    return engine


def totals(engine: MatchingEngine) -> dict[str, D]:
    return {asset: b.free + b.locked for asset, b in engine.accounts["a"].balances.items()}


def test_market_buy_walks_the_book_and_pays_fees_in_base():
    engine = make_engine()
    order = engine.place("a", OrderRequest("BTCUSDT", Side.BUY, OrderType.MARKET, quantity=D("2.5")))
    assert order.status == Status.FILLED
    assert [(f.price, f.qty) for f in order.fills] == [(D("101"), D("1")), (D("102"), D("1.5"))]
    assert totals(engine) == {"USDT": D("10000") - D("254"), "BTC": D("10") + D("2.5") * D("0.999")}


def test_market_sell_by_quote_quantity_rounds_down_to_the_step():
    engine = make_engine()
    order = engine.place("a", OrderRequest("BTCUSDT", Side.SELL, OrderType.MARKET, quote_quantity=D("50")))
    assert order.status == Status.FILLED and order.executed_qty == D("0.505") and order.quantity == D("0.505")


def test_partial_fill_then_cancel_releases_the_rest():
    engine = make_engine()
    order = engine.place(
        "a",
        OrderRequest(
            "BTCUSDT", Side.SELL, OrderType.LIMIT, quantity=D("3"), price=D("110"), time_in_force=TimeInForce.GTC
        ),
    )
    assert engine.accounts["a"].balances["BTC"].locked == D("3")
    engine.on_print("BTCUSDT", D("110"), D("1.25"))
    assert order.status == Status.PARTIALLY_FILLED and order.executed_qty == D("1.25")
    engine.cancel("a", "BTCUSDT", order.order_id)
    assert engine.accounts["a"].balances["BTC"].locked == 0
    assert totals(engine)["BTC"] == D("8.75")
    assert totals(engine)["USDT"] == D("10000") + D("137.5") * D("0.999")


def test_stop_market_buy_triggers_at_or_above_the_stop():
    engine = make_engine()
    order = engine.place(
        "a", OrderRequest("BTCUSDT", Side.BUY, OrderType.STOP_LOSS, quantity=D("1"), stop_price=D("105"))
    )
    assert engine.on_print("BTCUSDT", D("104.99"), D("1")) == [] and order.status == Status.NEW
    engine.on_print("BTCUSDT", D("105"), D("1"))
    assert order.status == Status.FILLED and order.fills[0].price == D("101")


def test_insufficient_balance_is_refused_without_side_effects():
    engine = make_engine()
    with pytest.raises(EngineError) as refused:
        engine.place(
            "a",
            OrderRequest(
                "BTCUSDT", Side.BUY, OrderType.LIMIT, quantity=D("200"), price=D("100"), time_in_force=TimeInForce.GTC
            ),
        )
    assert refused.value.reason == EngineError.INSUFFICIENT_BALANCE
    assert engine.orders == {} and totals(engine) == {"USDT": D("10000"), "BTC": D("10")}


def test_buy_oco_with_limit_maker_below_and_stop_above():
    engine = make_engine()
    order_list = engine.place_oco(
        "a",
        "BTCUSDT",
        Side.BUY,
        D("1"),
        above=OcoLeg(OrderType.STOP_LOSS, stop_price=D("110")),
        below=OcoLeg(OrderType.LIMIT_MAKER, price=D("95")),
    )
    stop_leg, maker_leg = (engine.orders[i] for i in order_list.order_ids)
    assert engine.accounts["a"].balances["USDT"].locked == D("110")  # the larger need of the two legs
    engine.on_print("BTCUSDT", D("94"), D("5"))
    assert maker_leg.status == Status.FILLED and stop_leg.status == Status.EXPIRED
    assert order_list.status == "ALL_DONE"
    assert engine.accounts["a"].balances["USDT"].locked == 0
    assert totals(engine) == {"USDT": D("9905"), "BTC": D("10.999")}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["limit_buy", "limit_sell", "market_buy", "market_sell", "print", "cancel"]),
            st.integers(90, 112),
            st.integers(1, 30),
        ),
        max_size=25,
    )
)
def test_balances_are_conserved_up_to_fees_and_never_negative(actions):
    """Whatever happens, value moves only through fills, fees are 0.1%, locks end at zero once closed."""
    engine = make_engine()
    for action, price, size in actions:
        qty, px = D(size) / 10, D(price)
        try:
            if action == "limit_buy":
                engine.place(
                    "a",
                    OrderRequest(
                        "BTCUSDT", Side.BUY, OrderType.LIMIT, quantity=qty, price=px, time_in_force=TimeInForce.GTC
                    ),
                )
            elif action == "limit_sell":
                engine.place(
                    "a",
                    OrderRequest(
                        "BTCUSDT", Side.SELL, OrderType.LIMIT, quantity=qty, price=px, time_in_force=TimeInForce.GTC
                    ),
                )
            elif action == "market_buy":
                engine.place("a", OrderRequest("BTCUSDT", Side.BUY, OrderType.MARKET, quantity=qty))
            elif action == "market_sell":
                engine.place("a", OrderRequest("BTCUSDT", Side.SELL, OrderType.MARKET, quantity=qty))
            elif action == "print":
                engine.on_print("BTCUSDT", px, qty)
            else:
                engine.cancel_all("a", "BTCUSDT")
        except EngineError:
            pass
        for balance in engine.accounts["a"].balances.values():
            assert balance.free >= 0 and balance.locked >= 0
    quote_in = sum(f.quote_qty for f in engine.fills if f.side == Side.SELL)
    quote_out = sum(f.quote_qty for f in engine.fills if f.side == Side.BUY)
    base_in = sum(f.qty for f in engine.fills if f.side == Side.BUY)
    base_out = sum(f.qty for f in engine.fills if f.side == Side.SELL)
    fees = {
        "USDT": sum(f.commission for f in engine.fills if f.commission_asset == "USDT"),
        "BTC": sum(f.commission for f in engine.fills if f.commission_asset == "BTC"),
    }
    now = totals(engine)
    assert now["USDT"] == D("10000") + quote_in - quote_out - fees["USDT"]
    assert now["BTC"] == D("10") + base_in - base_out - fees["BTC"]
    engine.cancel_all("a", "BTCUSDT")
    assert all(b.locked == 0 for b in engine.accounts["a"].balances.values())
