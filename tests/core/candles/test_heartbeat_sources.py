"""The heartbeat sources of config.yaml: the single-source form and the list read the same way, a bad source is
one clear config error, and a bot's default source is the first source's listing of the same asset."""

from __future__ import annotations

import pytest

from core.candles.source_symbols import UnknownMapping
from core.candles.sources import FeedSource, check_source, configured_sources, default_source, follow_key
from core.infra.bus import EXTRA_SYMBOLS, feed_symbols
from core.infra.config import ConfigError, load_settings
from tests.core.test_config import clean_env, write  # noqa: F401 - clean_env is a fixture

SOURCES = """feeds:
  timeframes: [1m, 1h]
  sources:
    - {venue: binance, symbols: [btcusdt, ETHUSDT]}
    - {venue: kraken, symbols: [XBTUSD], timeframes: [1m], ws_url: "ws://127.0.0.1:9/ws"}
"""


def test_the_single_source_form_still_reads_as_one_source(tmp_path, clean_env):  # noqa: F811
    settings = load_settings(*write(tmp_path, "feeds:\n  venue: sim\n  symbols: [btcusdt]\n"))
    assert configured_sources(settings) == [FeedSource("sim", ("BTCUSDT",), ("1m", "3m", "5m", "15m", "1h", "4h"))]
    assert default_source("kraken", "XBTUSD", settings) == ("sim", "BTCUSDT")


def test_a_list_of_sources_the_first_is_the_heartbeat(tmp_path, redis_client):
    settings = load_settings(*write(tmp_path, SOURCES))
    binance, kraken = configured_sources(settings)
    assert binance == FeedSource("binance", ("BTCUSDT", "ETHUSDT"), ("1m", "1h"))
    assert kraken == FeedSource("kraken", ("XBTUSD",), ("1m",), "ws://127.0.0.1:9/ws")
    assert default_source("bitget", "BTCUSDT", settings) == ("binance", "BTCUSDT")
    assert default_source("kraken", "XBTUSD", settings) == ("binance", "BTCUSDT")
    with pytest.raises(UnknownMapping):
        default_source("kraken", "XRPXBT", settings)
    assert (follow_key("binance", settings), follow_key("kraken", settings)) == (EXTRA_SYMBOLS, feed_symbols("kraken"))
    assert check_source("binance", "ETHUSDT", "1h", redis_client, settings).streamed
    assert "does not build 1h candles" in check_source("kraken", "XBTUSD", "1h", redis_client, settings).warning
    assert "not a heartbeat source" in check_source("bitget", "BTCUSDT", "1m", redis_client, settings).warning
    not_yet = check_source("kraken", "ETHUSD", "1m", redis_client, settings)
    assert not not_yet.streamed and "starting the bot asks the feeds for it" in not_yet.warning
    redis_client.sadd(feed_symbols("kraken"), "ETHUSD")
    assert check_source("kraken", "ETHUSD", "1m", redis_client, settings).streamed


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("feeds:\n  sources:\n    - {venue: ftx, symbols: [BTCUSDT]}\n", "feeds.sources.0.venue"),
        ("feeds:\n  sources:\n    - {venue: kraken, symbols: []}\n", "feeds.sources.0.symbols"),
        ("feeds:\n  sources:\n    - {venue: kraken, symbols: [XBTUSD], timeframes: [2m]}\n", "unknown timeframe"),
    ],
)
def test_a_bad_source_is_one_clear_config_error(tmp_path, clean_env, yaml_text, expected):  # noqa: F811
    with pytest.raises(ConfigError, match="config.yaml") as error:
        load_settings(*write(tmp_path, yaml_text))
    assert expected in str(error.value)
