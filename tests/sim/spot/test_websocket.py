"""Market streams of the Binance face, over real websockets."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest
import requests
import websockets


async def frames(url: str, count: int, timeout: float = 10.0) -> list[dict]:
    async with websockets.connect(url) as ws:
        return [json.loads(await asyncio.wait_for(ws.recv(), timeout)) for _ in range(count)]


def test_raw_trade_stream_matches_rest_candle_of_the_same_minute(sim):
    trades = asyncio.run(frames(f"{sim.ws_url}/ws/ethusdt@trade", 3))
    assert [t["e"] for t in trades] == ["trade"] * 3
    assert [t["t"] for t in trades] == list(range(trades[0]["t"], trades[0]["t"] + 3))  # one trade per second
    last = trades[-1]
    minute = last["T"] // 60_000 * 60_000
    (row,) = requests.get(
        f"{sim.url}/api/v3/klines",
        params={"symbol": "ETHUSDT", "interval": "1m", "startTime": minute, "limit": 1},
        timeout=5,
    ).json()
    assert Decimal(row[3]) <= Decimal(last["p"]) <= Decimal(row[2])


def test_combined_stream_wraps_frames_and_subscribe_adds_streams(sim):
    async def scenario() -> tuple[list[dict], dict, dict]:
        async with websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@bookTicker") as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["solusdt@trade"], "id": 7}))
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
            replies, seen = {}, []
            while len(replies) < 2 or "solusdt@trade" not in seen:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if "id" in message:
                    replies[message["id"]] = message
                else:
                    seen.append(message["stream"])
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["nope@trade"], "id": 9}))
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if message.get("id") == 9:
                    return [first], replies, message

    (first,), replies, bad = asyncio.run(scenario())
    assert first["stream"] == "btcusdt@bookTicker"
    assert Decimal(first["data"]["b"]) < Decimal(first["data"]["a"])
    assert replies[7] == {"result": None, "id": 7}
    assert replies[8] == {"result": ["btcusdt@bookTicker", "solusdt@trade"], "id": 8}
    assert bad["error"]["code"] == 2


def test_diff_depth_continues_the_rest_snapshot(sim):
    """Binance's sync recipe works: buffer, snapshot, drop u <= lastUpdateId, then U == previous u + 1."""

    async def scenario() -> tuple[list[dict], dict, dict]:
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@depth@100ms") as ws:
            buffered = [json.loads(await asyncio.wait_for(ws.recv(), 5))]
            snapshot = await asyncio.to_thread(
                lambda: requests.get(
                    f"{sim.url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 1000}, timeout=5
                ).json()
            )
            buffered += [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(3)]
            final = await asyncio.to_thread(
                lambda: requests.get(
                    f"{sim.url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 1000}, timeout=5
                ).json()
            )
            return buffered, snapshot, final

    events, snapshot, final = asyncio.run(scenario())
    book = {"b": {p: q for p, q in snapshot["bids"]}, "a": {p: q for p, q in snapshot["asks"]}}
    last_u = snapshot["lastUpdateId"]
    applied = [e for e in events if e["u"] > last_u]
    assert applied and applied[0]["U"] <= last_u + 1 <= applied[0]["u"]
    for event in applied:
        assert event["U"] == last_u + 1
        last_u = event["u"]
        for side in ("b", "a"):
            for price, qty in event[side]:
                if Decimal(qty) == 0:
                    book[side].pop(price, None)
                else:
                    book[side][price] = qty
    if final["lastUpdateId"] == last_u:  # no further second elapsed between the last event and the snapshot
        assert book["b"] == dict(final["bids"]) and book["a"] == dict(final["asks"])


@pytest.mark.slow
def test_kline_closes_on_the_utc_minute_with_x_true_and_matches_rest(sim):
    """The heartbeat contract: k.x on the minute boundary, and REST serves that very candle."""

    async def closed_candle() -> dict:
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@kline_1m") as ws:
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 70))
                if event["k"]["x"]:
                    event["received_ms"] = int(time.time() * 1000)
                    return event

    event = asyncio.run(closed_candle())
    k = event["k"]
    assert k["t"] % 60_000 == 0 and k["T"] == k["t"] + 59_999
    assert k["T"] < event["received_ms"]  # sent once its minute is over, never before
    assert k["n"] == 60 and k["L"] - k["f"] == 59
    (row,) = requests.get(
        f"{sim.url}/api/v3/klines",
        params={"symbol": "BTCUSDT", "interval": "1m", "startTime": k["t"], "limit": 1},
        timeout=5,
    ).json()
    assert row[:9] == [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"]]
    assert row[9:11] == [k["V"], k["Q"]]


def test_invalid_stream_name_closes_the_connection(sim):
    async def scenario() -> int | None:
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@kline_7m") as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return ws.close_code

    assert asyncio.run(scenario()) == 1008


def test_drop_ws_now_cuts_every_connection_and_reconnecting_works(sim):
    async def scenario() -> dict:
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws:
            await asyncio.wait_for(ws.recv(), 5)
            await asyncio.to_thread(sim.set_faults, drop_ws_now=True)
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
        return (await frames(f"{sim.ws_url}/ws/btcusdt@trade", 1))[0]

    assert asyncio.run(scenario())["e"] == "trade"
