"""The small book of each heartbeat venue read from its documented partial-depth frames (Binance `<sym>@depth10` in
a combined stream, Bitget `books5`/`books15`, Kraken v2 `book` snapshot + updates), the subscriptions that ask
for them, and what a page reads back: cumulative sizes, freshness. A bad frame says why and changes no book."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from core.candles.depth import DEPTH_FRESH_S, Depth, StoredDepth, read_stored
from core.candles.source_protocols import BinanceProtocol, BitgetProtocol, KrakenProtocol
from core.exchanges.spot.binance_klines import KlineUpdate, MalformedMessage
from tests.feeds.documented_venue import kraken_book, kraken_ohlc

D = Decimal

# Binance spot docs, "Partial Book Depth Streams" (`<symbol>@depth<levels>`), as a combined stream delivers it.
BINANCE_PARTIAL = {
    "stream": "bnbbtc@depth10",
    "data": {"lastUpdateId": 160, "bids": [["0.0024", "10"]], "asks": [["0.0026", "100"]]},
}

# Bitget v2 spot docs, "Depth Channel", push data example.
BITGET_BOOKS5 = {
    "action": "snapshot",
    "arg": {"instType": "SPOT", "channel": "books5", "instId": "BTCUSDT"},
    "data": [
        {
            "asks": [["26274.9", "0.0009"], ["26275.0", "0.0500"]],
            "bids": [["26274.8", "0.0009"], ["26274.7", "0.0027"]],
            "seq": 123,
            "ts": "1695710946294",
        }
    ],
    "ts": 1695710946294,
}


# Kraken websocket v2 docs, "book" snapshot and update examples (their pair MATIC/USD is not in our symbol table:
# the same frames for BTC/USD, which is).
KRAKEN_SNAPSHOT_BIDS = [
    ("0.5666", "4831.75496356"),
    ("0.5665", "6658.22734739"),
    ("0.5664", "18724.91513344"),
    ("0.5663", "11563.92544914"),
    ("0.5662", "14006.65365711"),
    ("0.5661", "17454.85679807"),
    ("0.566", "18097.1547"),
    ("0.5659", "33644.89175666"),
    ("0.5658", "148.3464"),
    ("0.5657", "606.70854372"),
]
KRAKEN_SNAPSHOT_ASKS = [
    ("0.5668", "4410.79769741"),
    ("0.5669", "4655.40412487"),
    ("0.567", "49844.89424998"),
    ("0.5671", "24306.41678"),
    ("0.5672", "29783.25223475"),
    ("0.5673", "57234.71239278"),
    ("0.5674", "45065.04744"),
    ("0.5675", "5912.76380354"),
    ("0.5676", "42514.92434778"),
    ("0.5677", "36304.0847022"),
]


def test_binance_partial_book_in_a_combined_stream_names_its_symbol_by_the_stream():
    [depth] = BinanceProtocol("binance").parse(json.dumps(BINANCE_PARTIAL))
    assert depth == Depth("binance", "BNBBTC", ((D("0.0024"), D("10")),), ((D("0.0026"), D("100")),))
    # the klines of the same connection still read as before
    kline = {"stream": "bnbbtc@kline_1m", "data": {"e": "kline"}}
    with pytest.raises(MalformedMessage, match="without 'k'"):
        BinanceProtocol("binance").parse(json.dumps(kline))


def test_binance_subscribes_to_depth10_beside_klines_and_book_ticker():
    proto = BinanceProtocol("sim")
    assert (
        proto.url("ws://h", ["BTCUSDT"]) == "ws://h/stream?streams=btcusdt@kline_1m/btcusdt@bookTicker/btcusdt@depth10"
    )
    added = json.loads(proto.add("ETHUSDT", 3)[0])["params"]
    assert added == ["ethusdt@kline_1m", "ethusdt@bookTicker", "ethusdt@depth10"]


def test_a_full_snapshot_is_sorted_best_first_cut_to_ten_levels_and_drops_empty_levels():
    bids = [[str(100 - i), "1"] for i in range(15)] + [["100.5", "0"]]
    asks = [[str(101 + i), "2"] for i in reversed(range(15))]
    frame = {"stream": "btcusdt@depth10@100ms", "data": {"lastUpdateId": 7, "bids": bids, "asks": asks}}
    [depth] = BinanceProtocol("sim").parse(json.dumps(frame))
    assert [p for p, _ in depth.bids] == [D(100 - i) for i in range(10)]
    assert [p for p, _ in depth.asks] == [D(101 + i) for i in range(10)]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"bids": [["abc", "1"]], "asks": []}, "bids price missing or not a non-negative number"),
        ({"bids": [["1", "-2"]], "asks": []}, "bids size missing or not a non-negative number"),
        ({"bids": [["0", "2"]], "asks": []}, "a bids price is zero"),
        ({"bids": [], "asks": [["1"]]}, "a level of 'asks' is not"),
        ({"bids": [], "asks": "1,2"}, "field 'asks' missing or not a list"),
        ({"asks": []}, "field 'bids' missing or not a list"),
        ({"bids": [["NaN", "1"]], "asks": []}, "bids price missing"),
        ([], "depth data is not an object"),
    ],
)
def test_a_bad_binance_partial_book_says_what_is_wrong(data, reason):
    with pytest.raises(MalformedMessage, match=reason):
        BinanceProtocol("sim").parse(json.dumps({"stream": "btcusdt@depth10", "data": data}))


def test_a_binance_depth_stream_without_a_symbol_is_refused():
    with pytest.raises(MalformedMessage, match="does not start with a symbol"):
        BinanceProtocol("sim").parse(json.dumps({"stream": "@depth10", "data": BINANCE_PARTIAL["data"]}))


def test_bitget_documented_books5_push_and_the_books15_subscription():
    proto = BitgetProtocol()
    [depth] = proto.parse(json.dumps(BITGET_BOOKS5))
    assert depth == Depth(
        "bitget",
        "BTCUSDT",
        ((D("26274.8"), D("0.0009")), (D("26274.7"), D("0.0027"))),
        ((D("26274.9"), D("0.0009")), (D("26275.0"), D("0.0500"))),
    )
    [subscribe] = proto.on_connect(["BTCUSDT"])
    assert json.loads(subscribe)["args"] == [
        {"instType": "SPOT", "channel": "candle1m", "instId": "BTCUSDT"},
        {"instType": "SPOT", "channel": "books15", "instId": "BTCUSDT"},
    ]
    fifteen = {**BITGET_BOOKS5, "arg": {**BITGET_BOOKS5["arg"], "channel": "books15"}}
    fifteen["data"] = [{"asks": [[str(27000 + i), "1"] for i in range(15)], "bids": [["26999", "1"]], "seq": 1}]
    [deep] = proto.parse(json.dumps(fifteen))
    assert len(deep.asks) == 10 and deep.asks[-1][0] == D(27009)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([], "without a 'data' list"),
        ("x", "without a 'data' list"),
        ([{"asks": [["1", "x"]], "bids": []}], "asks size"),
    ],
)
def test_a_bad_bitget_books_push_says_what_is_wrong(data, reason):
    with pytest.raises(MalformedMessage, match=reason):
        BitgetProtocol().parse(json.dumps({**BITGET_BOOKS5, "data": data}))


def test_kraken_subscribes_to_the_book_at_depth_ten_beside_ohlc():
    subscriptions = [json.loads(m) for m in KrakenProtocol().on_connect(["XBTUSD"])]
    assert [m["params"] for m in subscriptions] == [
        {"channel": "ohlc", "interval": 1, "symbol": ["BTC/USD"], "snapshot": True},
        {"channel": "book", "depth": 10, "symbol": ["BTC/USD"], "snapshot": True},
    ]
    assert len(KrakenProtocol().add("ETHUSD", 4)) == 2


def test_kraken_documented_snapshot_and_update():
    proto = KrakenProtocol()
    proto.on_connect(["XBTUSD"])
    [snapshot] = proto.parse(kraken_book("snapshot", KRAKEN_SNAPSHOT_BIDS, KRAKEN_SNAPSHOT_ASKS))
    assert snapshot.venue == "kraken" and snapshot.symbol == "XBTUSD"
    assert snapshot.bids == tuple((D(p), D(q)) for p, q in KRAKEN_SNAPSHOT_BIDS)
    assert snapshot.asks == tuple((D(p), D(q)) for p, q in KRAKEN_SNAPSHOT_ASKS)
    [update] = proto.parse(kraken_book("update", [("0.5657", "1098.3947558")], []))
    assert update.bids[-1] == (D("0.5657"), D("1098.3947558")) and update.bids[:-1] == snapshot.bids[:-1]
    assert update.asks == snapshot.asks


def test_kraken_book_snapshot_then_updates_delete_insert_and_cut_back_to_ten():
    proto = KrakenProtocol()
    proto.on_connect(["XBTUSD"])
    bids = [(f"{45000 - i}.5", "0.10000000") for i in range(10)]
    asks = [(f"{45001 + i}.5", "0.20000000") for i in range(10)]
    [snapshot] = proto.parse(kraken_book("snapshot", bids, asks))
    assert snapshot.symbol == "XBTUSD" and snapshot.bids[0] == (D("45000.5"), D("0.10000000"))
    assert len(snapshot.bids) == len(snapshot.asks) == 10
    # qty 0 deletes the best ask; a better bid enters and pushes the tenth bid out (no delete comes for it)
    [update] = proto.parse(kraken_book("update", [("45000.9", "1.5")], [("45001.5", "0")]))
    assert update.bids[0] == (D("45000.9"), D("1.5")) and len(update.bids) == 10
    assert update.bids[-1][0] == D("44992.5")
    assert update.asks[0][0] == D("45002.5") and len(update.asks) == 9
    # a level changed in place
    [again] = proto.parse(kraken_book("update", [("44995.5", "3")], []))
    assert dict(again.bids)[D("44995.5")] == D(3)


def test_kraken_bad_update_changes_no_book_and_an_update_before_its_snapshot_is_ignored():
    proto = KrakenProtocol()
    proto.on_connect(["XBTUSD"])
    assert proto.parse(kraken_book("update", [("1", "1")], [])) == []
    proto.parse(kraken_book("snapshot", [("100", "1")], [("101", "1")]))
    bad = json.loads(kraken_book("update", [("99", "2")], []))
    bad["data"][0]["asks"] = [{"price": 101, "qty": -1}]
    with pytest.raises(MalformedMessage, match="asks size"):
        proto.parse(json.dumps(bad))
    [unchanged] = proto.parse(kraken_book("update", [], []))
    assert unchanged.bids == ((D(100), D(1)),) and unchanged.asks == ((D(101), D(1)),)
    with pytest.raises(MalformedMessage, match="expected snapshot or update"):
        proto.parse(json.dumps({"channel": "book", "type": "delta", "data": []}))
    with pytest.raises(MalformedMessage, match="symbol"):
        proto.parse(kraken_book("snapshot", [("1", "1")], [], symbol="NOT A PAIR"))


def test_a_new_kraken_connection_forgets_the_books_of_the_last_one():
    proto = KrakenProtocol()
    proto.on_connect(["XBTUSD"])
    proto.parse(kraken_book("snapshot", [("100", "1")], [("101", "1")]))
    proto.on_connect(["XBTUSD"])
    assert proto.parse(kraken_book("update", [("99", "1")], [])) == []


def test_kraken_ohlc_still_reads_beside_the_book():
    [forming] = KrakenProtocol().parse(kraken_ohlc("snapshot", 1_695_685_500_000))
    assert isinstance(forming, KlineUpdate) and forming.candle.symbol == "XBTUSD"


def test_stored_book_reads_back_with_running_totals_bars_and_age():
    depth = Depth("sim", "BTCUSDT", ((D(100), D(1)), (D(99), D(3))), ((D(101), D(2)), (D(102), D("0.5"))))
    stored = read_stored(depth.body(at_ms=1_000_000))
    assert stored == StoredDepth(depth.bids, depth.asks, 1_000_000)
    bids, asks = stored.ladder()
    assert [(r.total, r.share) for r in bids] == [(D(1), D("25.0")), (D(4), D("100.0"))]
    assert [(r.total, r.share) for r in asks] == [(D(2), D("50.0")), (D("2.5"), D("62.5"))]
    assert stored.spread == D(1)
    assert not stored.stale(now=1_000 + DEPTH_FRESH_S - 0.5) and stored.stale(now=1_000 + DEPTH_FRESH_S + 0.5)
    assert StoredDepth((), (), 0).ladder() == ([], []) and StoredDepth((), (), 0).spread is None
