"""The feed on Bitget's and Kraken's documented protocols (loopback servers replaying their frames): REST backfill
on connect, minutes closed by the next one (or a few seconds after their end when no trade follows), a gap filled
from REST, and an unknown symbol refused by the venue is dropped and reported instead of silently never streaming;
the symbol's small book (Bitget `books15`, Kraken `book` snapshot + update) stored for the pages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.candles.depth import read_stored
from core.candles.store import read_stream
from core.infra.bus import depth_key
from tests.feeds.conftest import wait_until
from tests.feeds.documented_venue import (
    DocumentedVenue,
    bitget_books,
    bitget_push,
    bitget_row,
    kraken_book,
    kraken_ohlc,
)

MINUTE = 60_000
T0 = 1_700_006_400_000  # on a 4h boundary: the backfill of a fresh symbol starts there


def frame(venue: str, kind: str, minute: int) -> str:
    if venue == "bitget":
        return bitget_push(kind, [bitget_row(T0 + minute * MINUTE)], symbol="ETHUSDT", ts=T0 + minute * MINUTE)
    return kraken_ohlc(kind, T0 + minute * MINUTE, symbol="ETH/USD")


@pytest.mark.parametrize(
    ("venue", "symbol", "spelled"), [("bitget", "ETHUSDT", "ETHUSDT"), ("kraken", "ETHUSD", "ETH/USD")]
)
def test_backfill_live_closes_gap_fill_and_refusal_on_the_documented_protocol(
    run_feed, redis_client, venue, symbol, spelled
):
    server = DocumentedVenue(venue, listed={spelled}, rest_rows={symbol: [T0 + i * MINUTE for i in range(13)]}).start()
    unknown = "NOPE" + symbol[-4:]
    now_ms = [T0 + 10 * MINUTE + 500]  # the venue's clock
    ws, rest = f"ws://{server.url}/ws", f"http://{server.url}"
    try:
        with run_feed(
            ws, rest, [symbol, unknown], clock=lambda: now_ms[0] / 1000, venue=venue, keepalive_s=0.2
        ) as feed:

            def minutes() -> list[int]:
                return [(c.open_time - T0) // MINUTE for c in read_stream(redis_client, venue, symbol, "1m", count=100)]

            wait_until(lambda: minutes() == list(range(10)))  # the REST backfill up to the last closed minute
            wait_until(lambda: unknown in feed.rejected)
            assert feed.symbols == [symbol] and spelled in server.subscribed
            server.push(frame(venue, "snapshot", 10))
            server.push(frame(venue, "update", 12))  # minute 10 is final; nothing traded in minute 11 yet
            wait_until(lambda: minutes() == list(range(11)))
            server.push(frame(venue, "update", 13))  # minute 12 is final: 11 is a gap, filled from REST
            wait_until(lambda: minutes() == list(range(13)))
            now_ms[0] = T0 + 14 * MINUTE + 6_000  # minute 13 ended 6 s ago and no trade since: final without a row
            wait_until(lambda: minutes() == list(range(14)))
            assert feed.pipeline.stats.gaps_filled >= 1 and feed.pipeline.stats.malformed == 0
            assert feed.info()["rejected"] == [unknown]
            if venue == "bitget":  # its documented keep-alive: the text "ping", answered by "pong" (parsed as nothing)
                wait_until(lambda: server.pings >= 1)
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("venue", "symbol", "spelled"), [("bitget", "ETHUSDT", "ETHUSDT"), ("kraken", "ETHUSD", "ETH/USD")]
)
def test_the_small_book_of_the_documented_protocol_is_stored_for_the_pages(
    run_feed, redis_client, venue, symbol, spelled
):
    server = DocumentedVenue(venue, listed={spelled}).start()
    redis_client.delete(depth_key(venue, symbol))
    try:
        with run_feed(f"ws://{server.url}/ws", f"http://{server.url}", [symbol], venue=venue) as feed:
            wait_until(lambda: spelled in server.subscribed)
            if venue == "bitget":
                server.push(bitget_books(spelled, [["2500.1", "1.5"], ["2500.0", "2"]], [["2500.2", "0.5"]]))
            else:
                server.push(kraken_book("snapshot", [("2500.1", "1.5"), ("2500.0", "2")], [("2500.2", "0.5")], spelled))
                server.push(kraken_book("update", [("2500.1", "0")], [], spelled))  # the best bid leaves
            both = ((Decimal("2500.1"), Decimal("1.5")), (Decimal("2500.0"), Decimal(2)))
            expected_bids = both[1:] if venue == "kraken" else both

            def stored_bids():
                raw = redis_client.get(depth_key(venue, symbol))
                return read_stored(raw) if raw and read_stored(raw).bids == expected_bids else None

            assert wait_until(stored_bids).asks == ((Decimal("2500.2"), Decimal("0.5")),)
            assert feed.pipeline.stats.malformed == 0
    finally:
        server.stop()
