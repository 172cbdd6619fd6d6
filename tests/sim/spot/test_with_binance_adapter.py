"""Our own Binance adapter against the simulator: the two sides of the protocol agree."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.exchanges import errors
from core.exchanges.models import OcoRequest, OrderRequest
from core.exchanges.spot.binance import BinanceSpot


@pytest.fixture
def adapter(sim):
    sim.create_account("adapterKey1", "adapter-secret", {"USDT": "50000", "ETH": "5"})
    yield BinanceSpot(
        api_key="adapterKey1", api_secret="adapter-secret", base_url=sim.url, timeout=2.0, sleep=lambda seconds: None
    )
    sim.clear_faults()


def test_adapter_reads_rules_balances_and_candles(adapter):
    rules = adapter.load_markets()["BTCUSDT"]
    assert rules.tick_size == Decimal("0.01") and rules.step_size == Decimal("0.00001")
    assert adapter.balances()["USDT"].free == Decimal("50000")
    candles = adapter.klines("ETHUSDT", "5m", limit=3)
    assert len(candles) == 3


def test_adapter_places_queries_and_cancels(adapter):
    last = adapter.klines("ETHUSDT", "1m", limit=1)[-1]
    price = (Decimal(str(last.close)) * Decimal("0.7")).quantize(Decimal("0.01"))
    placed = adapter.place_order(
        OrderRequest(
            client_order_id="adapter-1",
            symbol="ETHUSDT",
            side="buy",
            type="limit",
            quantity=Decimal("0.5"),
            price=price,
        )
    )
    assert placed.client_order_id == "adapter-1"
    assert adapter.get_order("ETHUSDT", client_order_id="adapter-1").client_order_id == "adapter-1"
    adapter.cancel_order("ETHUSDT", client_order_id="adapter-1")
    with pytest.raises(errors.OrderNotFound):
        adapter.cancel_order("ETHUSDT", client_order_id="adapter-1")


def test_adapter_recovers_a_lost_order_response_without_a_double_order(sim, adapter):
    sim.set_faults(lose_next_order_response=True)
    placed = adapter.place_order(
        OrderRequest(
            client_order_id="adapter-lost", symbol="ETHUSDT", side="sell", type="market", quantity=Decimal("0.1")
        )
    )
    assert placed.client_order_id == "adapter-lost"
    fills = adapter.trades("ETHUSDT")
    assert sum(t.qty for t in fills) == Decimal("0.1")  # placed once, not twice


def test_an_emulated_oco_resent_after_only_its_stop_landed_keeps_the_stop_and_adds_the_limit_leg(sim, adapter):
    adapter.has_native_oco = False  # as on a venue without OCO: two linked orders
    last = Decimal(str(adapter.klines("ETHUSDT", "1m", limit=1)[-1].close))
    oco = OcoRequest(
        client_order_id="adapter-oco",
        symbol="ETHUSDT",
        side="sell",
        quantity=Decimal("0.5"),
        limit_price=(last * Decimal("1.3")).quantize(Decimal("0.01")),
        stop_price=(last * Decimal("0.7")).quantize(Decimal("0.01")),
    )
    stop = adapter.place_order(oco.stop_loss_leg())  # the first attempt: the stop landed, the limit leg did not
    result = adapter.place_oco(oco)  # the re-send (same client ids): not refused as a duplicate
    assert [leg.client_order_id for leg in result.orders] == ["adapter-oco-tp", "adapter-oco-sl"]
    assert result.orders[1].venue_order_id == stop.venue_order_id and result.emulated
    open_ids = sorted(o.client_order_id for o in adapter.open_orders("ETHUSDT"))
    assert open_ids.count("adapter-oco-sl") == 1 and open_ids.count("adapter-oco-tp") == 1
