"""Our own Binance adapter against the simulator: the two sides of the protocol agree."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.exchanges import errors
from core.exchanges.binance import BinanceSpot
from core.exchanges.models import OrderRequest


@pytest.fixture
def adapter(sim):
    sim.create_account("adapterKey1", "adapter-secret", {"USDT": "50000", "ETH": "5"})
    yield BinanceSpot(api_key="adapterKey1", api_secret="adapter-secret", base_url=sim.url, timeout=2.0,
                      sleep=lambda seconds: None)
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
    placed = adapter.place_order(OrderRequest(client_order_id="adapter-1", symbol="ETHUSDT", side="buy",
                                              type="limit", quantity=Decimal("0.5"), price=price))
    assert placed.client_order_id == "adapter-1"
    assert adapter.get_order("ETHUSDT", client_order_id="adapter-1").client_order_id == "adapter-1"
    adapter.cancel_order("ETHUSDT", client_order_id="adapter-1")
    with pytest.raises(errors.OrderNotFound):
        adapter.cancel_order("ETHUSDT", client_order_id="adapter-1")


def test_adapter_recovers_a_lost_order_response_without_a_double_order(sim, adapter):
    sim.set_faults(lose_next_order_response=True)
    placed = adapter.place_order(OrderRequest(client_order_id="adapter-lost", symbol="ETHUSDT", side="sell",
                                              type="market", quantity=Decimal("0.1")))
    assert placed.client_order_id == "adapter-lost"
    fills = adapter.trades("ETHUSDT")
    assert sum(t.qty for t in fills) == Decimal("0.1")  # placed once, not twice
