"""make_exchange builds each venue; credentials never show in repr/str."""

from __future__ import annotations

import pytest

from core.exchanges.spot.base import client_order_id_for
from core.exchanges.spot.binance import BinanceSpot
from core.exchanges.spot.bitget import BitgetSpot
from core.exchanges.spot.kraken import KrakenSpot
from core.exchanges.spot.registry import SimExchange, make_exchange

SECRET = "s3cr3t-value-that-must-never-leak"
KEY = "public-key-abcdefghijklmnop"


@pytest.mark.parametrize(
    ("venue", "cls", "url"),
    [
        ("binance", BinanceSpot, "https://api.binance.com"),
        ("bitget", BitgetSpot, "https://api.bitget.com"),
        ("kraken", KrakenSpot, "https://api.kraken.com"),
        ("sim", SimExchange, "http://127.0.0.1:8900"),
    ],
)
def test_each_venue_is_built_with_its_default_url(venue, cls, url, redis_server):
    exchange = make_exchange(venue, api_key=KEY, api_secret=SECRET, passphrase="Passphrase-XYZ", redis=redis_server)
    assert type(exchange) is cls and exchange.base_url == url
    assert exchange.redis is not None
    for text in (repr(exchange), str(exchange)):
        assert SECRET not in text and KEY not in text and "Passphrase-XYZ" not in text


def test_sim_speaks_binance_and_accepts_another_url():
    sim = make_exchange("sim", api_key=KEY, api_secret=SECRET, base_url="http://127.0.0.1:9999/")
    assert isinstance(sim, BinanceSpot) and sim.base_url == "http://127.0.0.1:9999" and sim.venue == "sim"


def test_unknown_venue_and_missing_passphrase_are_clear_errors():
    with pytest.raises(ValueError, match="unknown venue 'ftx'"):
        make_exchange("ftx", api_key=KEY, api_secret=SECRET)
    with pytest.raises(ValueError, match="passphrase"):
        make_exchange("bitget", api_key=KEY, api_secret=SECRET)


def test_client_order_ids_are_deterministic_and_fit_each_venue():
    assert client_order_id_for(42, "binance") == client_order_id_for("42", "binance") == "ab-42"
    assert client_order_id_for(10**11, "kraken") == "ab-100000000000"  # 15 chars + "-tp" = Kraken's 18
    with pytest.raises(ValueError, match="too long"):
        client_order_id_for(10**12, "kraken")
    with pytest.raises(ValueError, match="ASCII letters"):
        client_order_id_for("1;drop", "binance")
