"""The one symbol table across venues: every listing maps to every other venue's listing of its asset and back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.candles.source_symbols import (
    LISTINGS,
    UnknownMapping,
    asset_of,
    from_ws_symbol,
    map_symbol,
    symbol_on,
    ws_symbol,
)


@pytest.mark.parametrize(
    ("venue", "symbol", "to_venue", "expected"),
    [
        ("kraken", "XBTUSD", "binance", "BTCUSDT"),
        ("kraken", "XBTUSDT", "binance", "BTCUSDT"),
        ("bitget", "BTCUSDT", "binance", "BTCUSDT"),
        ("binance", "BTCUSDT", "kraken", "XBTUSD"),
        ("sim", "ETHUSDT", "kraken", "ETHUSD"),
        ("kraken", "XDGUSD", "bitget", "DOGEUSDT"),
        ("sim", "SOLUSDT", "sim", "SOLUSDT"),
        ("kraken", "ANYTHING", "kraken", "ANYTHING"),  # same venue: no table needed
    ],
)
def test_documented_pairs_map_across_venues(venue, symbol, to_venue, expected):
    assert map_symbol(venue, symbol, to_venue) == expected


def test_websocket_spellings_round_trip():
    assert ws_symbol("kraken", "XBTUSD") == "BTC/USD" and from_ws_symbol("kraken", "BTC/USD") == "XBTUSD"
    assert ws_symbol("kraken", "XDGUSD") == "DOGE/USD" and from_ws_symbol("kraken", "DOGE/USD") == "XDGUSD"
    assert ws_symbol("bitget", "BTCUSDT") == "BTCUSDT"
    assert ws_symbol("kraken", "NOPE") == "NOPE" and from_ws_symbol("kraken", "NO/PE") == "NO/PE"


def test_a_mapping_that_does_not_exist_is_a_clear_error():
    with pytest.raises(UnknownMapping, match="ZZZUSDT on bitget is not in the symbol table"):
        map_symbol("bitget", "ZZZUSDT", "binance")
    with pytest.raises(UnknownMapping, match="BNB/USD is not listed on kraken"):
        map_symbol("binance", "BNBUSDT", "kraken")
    with pytest.raises(UnknownMapping, match="XRP/USD is not listed on sim"):
        symbol_on("sim", asset_of("kraken", "XRPUSD"))


def test_the_table_has_no_duplicate_listing():
    keys = [(row.venue, row.symbol) for row in LISTINGS]
    ws_keys = [(row.venue, row.ws_symbol) for row in LISTINGS]
    assert len(keys) == len(set(keys)) and len(ws_keys) == len(set(ws_keys))


@given(st.sampled_from(LISTINGS), st.sampled_from(["sim", "binance", "bitget", "kraken"]))
def test_any_listing_maps_to_another_venue_and_back_to_the_same_asset(row, venue):
    try:
        there = map_symbol(row.venue, row.symbol, venue)
    except UnknownMapping:
        assert all(other.venue != venue for other in LISTINGS if other.asset == row.asset)
        return
    assert asset_of(venue, there) == row.asset
    back = map_symbol(venue, there, row.venue)
    assert asset_of(row.venue, back) == row.asset
    # Back on the same venue: itself; from another venue: that venue's first listing of the asset.
    assert back == (row.symbol if venue == row.venue else symbol_on(row.venue, row.asset))
    assert from_ws_symbol(venue, ws_symbol(venue, there)) == there
