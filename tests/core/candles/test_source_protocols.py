"""The heartbeat venues' kline websockets read from their documented frames (Bitget v2 `candle1m`, Kraken v2
`ohlc`): a minute closes when a later one arrives, acks and refusals become control replies, bad frames say why."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from core.candles.source_protocols import BinanceProtocol, BitgetProtocol, KrakenProtocol, protocol_for
from core.exchanges.spot.binance_klines import ControlReply, KlineUpdate, MalformedMessage
from tests.feeds.documented_venue import bitget_push, bitget_row, kraken_ohlc

T0 = 1_695_685_500_000  # 2023-09-25T23:45:00Z, a minute boundary


def bitget_at(action: str, rows: list[list[str]]) -> str:
    return bitget_push(action, rows, ts=T0 + 125_000)


def row(minute: int, close: str = "26200.5") -> list[str]:
    return bitget_row(T0 + minute * 60_000, close)


def kraken_at(kind: str, minute: int, close: float = 26200.5) -> str:
    return kraken_ohlc(kind, T0 + minute * 60_000, close=close)


def closed(messages) -> list[tuple[str, int, Decimal]]:
    return [
        (m.candle.symbol, m.candle.open_time, m.candle.close)
        for m in messages
        if isinstance(m, KlineUpdate) and m.closed
    ]


def test_bitget_subscribes_to_candle1m_and_closes_a_minute_when_the_next_begins():
    proto = BitgetProtocol()
    [subscribe] = proto.on_connect(["BTCUSDT", "ETHUSDT"])
    assert json.loads(subscribe) == {
        "op": "subscribe",
        "args": [
            {"instType": "SPOT", "channel": channel, "instId": symbol}
            for symbol in ("BTCUSDT", "ETHUSDT")
            for channel in ("candle1m", "books15")
        ],
    }
    assert proto.parse(json.dumps({"event": "subscribe", "arg": {"instId": "BTCUSDT"}})) == [
        ControlReply(None, None, "BTCUSDT")
    ]
    first = proto.parse(bitget_at("snapshot", [row(0, "26200.5")]))
    assert closed(first) == [] and first[0].candle.close == Decimal("26200.5")
    assert closed(proto.parse(bitget_at("update", [row(0, "26201.0")]))) == []
    assert closed(proto.parse(bitget_at("update", [row(1)]))) == [("BTCUSDT", T0, Decimal("26201.0"))]
    assert proto.parse("pong") == []


def test_bitget_refusal_of_an_unknown_symbol_is_a_control_error_naming_it():
    refusal = {
        "event": "error",
        "arg": {"instType": "SPOT", "channel": "candle1m", "instId": "NOPEUSDT"},
        "code": 30001,
        "msg": "instType:SPOT,channel:candle1m,instId:NOPEUSDT doesn't exist",
    }
    [reply] = BitgetProtocol().parse(json.dumps(refusal))
    assert reply.symbol == "NOPEUSDT" and "doesn't exist" in reply.error


def test_kraken_subscribes_with_its_websocket_spelling_and_reads_ohlc_with_decimals():
    proto = KrakenProtocol()
    subscribe, _book = proto.on_connect(["XBTUSD"])
    assert json.loads(subscribe) == {
        "method": "subscribe",
        "params": {"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 1, "snapshot": True},
        "req_id": 0,
    }
    assert json.loads(proto.add("ETHUSD", 7)[0])["params"]["symbol"] == ["ETH/USD"]
    ack = {
        "method": "subscribe",
        "result": {"channel": "ohlc", "interval": 1, "snapshot": True, "symbol": "BTC/USD"},
        "success": True,
        "time_in": "2023-09-25T23:45:00.1Z",
        "time_out": "2023-09-25T23:45:00.2Z",
        "req_id": 0,
    }
    assert proto.parse(json.dumps(ack)) == [ControlReply(0, None, "XBTUSD")]
    [forming] = proto.parse(kraken_at("snapshot", 0, close=26200.5))
    assert forming.candle.symbol == "XBTUSD" and forming.candle.open_time == T0 and not forming.closed
    assert forming.candle.close == Decimal("26200.5") and forming.candle.volume == Decimal("1.2345")
    assert closed(proto.parse(kraken_at("update", 2))) == [("XBTUSD", T0, Decimal("26200.5"))]  # no trade in minute 1
    assert proto.parse(json.dumps({"channel": "heartbeat"})) == []


def test_kraken_refusal_of_an_unknown_pair_names_it():
    refusal = {
        "error": "Currency pair not supported NOPE/USD",
        "method": "subscribe",
        "success": False,
        "symbol": "NOPE/USD",
        "time_in": "2023-09-25T23:45:00.1Z",
        "time_out": "2023-09-25T23:45:00.2Z",
        "req_id": 3,
    }
    [reply] = KrakenProtocol().parse(json.dumps(refusal))
    assert (reply.request_id, reply.symbol) == (3, "NOPE/USD") and "not supported" in reply.error


@pytest.mark.parametrize(
    ("proto", "raw", "reason"),
    [
        (KrakenProtocol(), "{not json", "not JSON"),
        (KrakenProtocol(), "[1, 2]", "not a JSON object"),
        (KrakenProtocol(), json.dumps({"channel": "trade", "data": []}), "unknown channel"),
        (KrakenProtocol(), kraken_at("update", 0).replace('"interval": 1', '"interval": 5'), "interval"),
        (KrakenProtocol(), kraken_at("update", 0).replace(".000000000Z", "+01:00"), "RFC3339"),
        (KrakenProtocol(), kraken_at("update", 0).replace("26210.0", "1.0"), "inconsistent"),
        (BitgetProtocol(), bitget_at("update", [["x", "1", "1", "1", "1", "1"]]), "not an integer"),
        (BitgetProtocol(), bitget_at("update", [row(0)[:4]]), "not a list like"),
        (BitgetProtocol(), bitget_at("update", [[str(T0 + 1), "1", "1", "1", "1", "1"]]), "minute boundary"),
        (BitgetProtocol(), bitget_at("update", [row(0)]).replace("26180.2", "-5"), "non-negative"),
        (
            BitgetProtocol(),
            json.dumps({"action": "update", "arg": {"channel": "books"}, "data": []}),
            "unknown channel",
        ),
    ],
)
def test_bad_frames_are_refused_with_the_reason(proto, raw, reason):
    with pytest.raises(MalformedMessage, match=reason):
        proto.parse(raw)


def test_every_heartbeat_venue_has_a_protocol_and_an_unknown_one_is_a_clear_error():
    assert isinstance(protocol_for("sim"), BinanceProtocol) and isinstance(protocol_for("kraken"), KrakenProtocol)
    assert (
        BinanceProtocol("sim", book_ticker=False).url("ws://h", ["BTCUSDT"]) == "ws://h/stream?streams=btcusdt@kline_1m"
    )
    with pytest.raises(ValueError, match="no kline websocket known for venue 'ftx'"):
        protocol_for("ftx")


def test_a_minute_without_a_later_row_closes_once_it_is_over():
    proto = KrakenProtocol()
    proto.parse(kraken_at("snapshot", 0))
    assert proto.overdue(T0 + 59_999) == []  # still running
    [final] = proto.overdue(T0 + 60_000)
    assert (final.symbol, final.open_time) == ("XBTUSD", T0) and proto.overdue(T0 + 120_000) == []
    # A late row of that minute is forming again; the pipeline drops it as a duplicate when the next one closes it.
    assert closed(proto.parse(kraken_at("update", 0))) == []
    assert BinanceProtocol("sim").overdue(T0 + 600_000) == []
