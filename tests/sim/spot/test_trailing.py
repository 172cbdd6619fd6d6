"""Trailing stops in the simulator (Binance trailingDelta): the engine's trail, then our adapter on the wire."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.exchanges.models import OrderRequest as VenueRequest
from core.exchanges.spot.binance import BinanceSpot
from sim.spot import trailing
from sim.spot.engine import MatchingEngine
from sim.spot.orders import EngineError, Instrument, OrderRequest, OrderType, Side, Status

BTC = Instrument("BTCUSDT", "BTC", "USDT", D("0.01"), D("0.0001"), D("0.0001"), D("1000"), D("5"))
BIDS = [(D("99"), D("1")), (D("98"), D("2")), (D("97"), D("5"))]
ASKS = [(D("101"), D("1")), (D("102"), D("2")), (D("103"), D("5"))]


def make_engine() -> MatchingEngine:
    engine = MatchingEngine(
        [BTC], book=lambda symbol: (BIDS, ASKS), clock=lambda: 1_000, last_price=lambda symbol: D("100")
    )
    engine.set_account("a", {"USDT": D("10000"), "BTC": D("10")})
    return engine


def trailing_sell(engine: MatchingEngine, delta: int, stop: D | None = None, kind=OrderType.STOP_LOSS):
    return engine.place(
        "a", OrderRequest("BTCUSDT", Side.SELL, kind, quantity=D("1"), stop_price=stop, trailing_delta=delta)
    )


def test_a_sell_trails_the_highest_trade_since_submission_and_triggers_delta_below_it():
    engine = make_engine()
    order = trailing_sell(engine, 200)  # 2 %
    assert order.status == Status.NEW and trailing.trigger_level(order) == D("98")
    engine.on_print("BTCUSDT", D("110"), D("1"))
    assert trailing.trigger_level(order) == D("107.8")  # followed the high
    engine.on_print("BTCUSDT", D("108"), D("1"))
    assert order.status == Status.NEW and trailing.trigger_level(order) == D("107.8")  # a dip does not lower it
    engine.on_print("BTCUSDT", D("107.8"), D("1"))
    assert order.status == Status.FILLED and order.triggered
    assert order.fills[0].price == D("99")  # sold at market into the book


def test_a_buy_trails_the_lowest_trade_and_triggers_delta_above_it():
    engine = make_engine()
    order = engine.place(
        "a", OrderRequest("BTCUSDT", Side.BUY, OrderType.STOP_LOSS, quantity=D("1"), trailing_delta=500)
    )
    assert engine.accounts["a"].balance("USDT").locked == D("101")  # what buying at market would cost now
    engine.on_print("BTCUSDT", D("90"), D("1"))
    engine.on_print("BTCUSDT", D("94"), D("1"))
    assert order.status == Status.NEW
    engine.on_print("BTCUSDT", D("94.5"), D("1"))
    assert order.status == Status.FILLED


def test_an_activation_price_waits_for_the_market_then_trails():
    engine = make_engine()
    order = trailing_sell(engine, 100, stop=D("105"), kind=OrderType.TAKE_PROFIT)
    engine.on_print("BTCUSDT", D("90"), D("1"))  # far below: not active, and nothing triggers
    assert not order.trail_active and order.status == Status.NEW
    engine.on_print("BTCUSDT", D("106"), D("1"))
    assert order.trail_active and trailing.trigger_level(order) == D("104.94")
    engine.on_print("BTCUSDT", D("104.9"), D("1"))
    assert order.status == Status.FILLED


def test_a_delta_outside_the_filter_is_refused():
    engine = make_engine()
    with pytest.raises(EngineError) as refused:
        trailing_sell(engine, 5)
    assert refused.value.message == "Filter failure: TRAILING_DELTA"


@pytest.fixture
def adapter(sim):
    sim.create_account("trailKey1", "trail-secret", {"USDT": "50000", "ETH": "5"})
    return BinanceSpot(
        api_key="trailKey1", api_secret="trail-secret", base_url=sim.url, timeout=2.0, sleep=lambda seconds: None
    )


def test_the_binance_face_says_trailing_stops_are_allowed(adapter):
    assert "trailing_stop" in adapter.load_markets()["ETHUSDT"].order_types


def test_a_trailing_stop_placed_by_our_adapter_trails_and_triggers_in_the_simulator(sim, adapter):
    last = adapter.klines("ETHUSDT", "1m", limit=1)[-1].close
    placed = adapter.place_order(
        VenueRequest(
            client_order_id="trail-1",
            symbol="ETHUSDT",
            side="sell",
            type="trailing_stop",
            quantity=D("1"),
            trail_pct=D("20"),  # wide: the synthetic market's own prints stay clear of it
        )
    )
    assert (placed.type, placed.status, placed.raw["trailingDelta"]) == ("trailing_stop", "open", 2000)
    high = (last * D("1.1")).quantize(D("0.01"))
    sim.inject_print("ETHUSDT", high)
    sim.inject_print("ETHUSDT", (high * D("0.81")).quantize(D("0.01")))  # 19 % off the high: still resting
    assert adapter.get_order("ETHUSDT", client_order_id="trail-1").status == "open"
    sim.inject_print("ETHUSDT", (high * D("0.79")).quantize(D("0.01")))
    done = adapter.get_order("ETHUSDT", client_order_id="trail-1")
    assert (done.status, done.filled_qty, done.type) == ("filled", D("1"), "trailing_stop")
