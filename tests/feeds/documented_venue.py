"""Bitget and Kraken on loopback (aiohttp), speaking their documented formats: the public candle and book
websocket (Bitget v2 `candle1m` and `books15`, Kraken v2 `ohlc` and `book`; acks and refusals as documented) and
the REST candles the feed backfills from (Bitget `/api/v2/spot/market/candles`, Kraken `/0/public/OHLC`). The test
pushes frames."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import WSMsgType, web

from tests.feeds.venue import serve_in_thread

MINUTE_MS = 60_000


def bitget_row(open_ms: int, close: str = "26200.5") -> list[str]:
    """[ts, open, high, low, close, baseVol, quoteVol, usdtVol], all strings."""
    return [str(open_ms), "26190.1", "26210.0", "26180.2", close, "1.2345", "32345.6", "32345.6"]


def bitget_push(action: str, rows: list[list[str]], symbol: str = "BTCUSDT", ts: int = 0) -> str:
    arg = {"instType": "SPOT", "channel": "candle1m", "instId": symbol}
    return json.dumps({"action": action, "arg": arg, "data": rows, "ts": ts})


def rfc3339(ms: int, nanos: bool = True) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + ("000000000Z" if nanos else "000000Z")


def kraken_ohlc(kind: str, open_ms: int, symbol: str = "BTC/USD", close: float = 26200.5) -> str:
    """Numbers as JSON numbers, interval_begin in RFC3339 with nanoseconds, as documented."""
    row = {
        "symbol": symbol,
        "open": 26190.1,
        "high": 26210.0,
        "low": 26180.2,
        "close": close,
        "trades": 12,
        "volume": 1.2345,
        "vwap": 26195.3,
        "interval_begin": rfc3339(open_ms),
        "interval": 1,
        "timestamp": rfc3339(open_ms + MINUTE_MS, nanos=False),
    }
    return json.dumps({"channel": "ohlc", "type": kind, "timestamp": rfc3339(open_ms + 30_000), "data": [row]})


def bitget_books(symbol: str, bids: list[list[str]], asks: list[list[str]]) -> str:
    """Bitget v2 `books15` as documented for `books5`: a full snapshot each push."""
    arg = {"instType": "SPOT", "channel": "books15", "instId": symbol}
    data = [{"asks": asks, "bids": bids, "checksum": 0, "seq": 123, "ts": "1695710946294"}]
    return json.dumps({"action": "snapshot", "arg": arg, "data": data, "ts": 1695710946294})


def kraken_book(kind: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]], symbol: str = "BTC/USD") -> str:
    """Kraken v2 `book` as documented: levels as {price, qty} JSON numbers with their exact digits, a checksum,
    updates with a timestamp."""

    def levels(rows: list[tuple[str, str]]) -> str:
        return "[" + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in rows) + "]"

    stamp = ',"timestamp":"2023-10-06T17:35:55.440295Z"' if kind == "update" else ""
    row = f'{{"symbol":{json.dumps(symbol)},"bids":{levels(bids)},"asks":{levels(asks)},"checksum":2439117997{stamp}}}'
    return f'{{"channel":"book","type":"{kind}","data":[{row}]}}'


@dataclass
class DocumentedVenue:
    venue: str  # "bitget" or "kraken"
    listed: set[str]  # websocket spellings it knows ("BTCUSDT" / "BTC/USD")
    rest_rows: dict[str, list[int]] = field(default_factory=dict)  # REST symbol -> open times served
    subscribed: list[str] = field(default_factory=list)
    rest_calls: int = 0
    pings: int = 0
    url: str = ""
    _sockets: list = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None

    def push(self, text: str) -> None:
        asyncio.run_coroutine_threadsafe(self._broadcast(text), self._loop).result(5)

    async def _broadcast(self, text: str) -> None:
        for ws in list(self._sockets):
            await ws.send_str(text)

    def _answers(self, request: dict) -> list[dict]:
        if self.venue == "bitget":
            answers = []
            for arg in request.get("args", []):
                if arg["instId"] in self.listed:
                    self.subscribed.append(arg["instId"])
                    answers.append({"event": "subscribe", "arg": arg})
                else:
                    text = f"instType:SPOT,channel:candle1m,instId:{arg['instId']} doesn't exist"
                    answers.append({"event": "error", "arg": arg, "code": 30001, "msg": text})
            return answers
        answers = []
        for symbol in request["params"]["symbol"]:
            times = {"time_in": "2023-09-25T23:45:00.1Z", "time_out": "2023-09-25T23:45:00.2Z"}
            if symbol in self.listed:
                self.subscribed.append(symbol)
                result = {"channel": "ohlc", "interval": 1, "snapshot": True, "symbol": symbol}
                answers.append({"method": "subscribe", "result": result, "success": True, **times})
            else:
                error = f"Currency pair not supported {symbol}"
                answers.append({"error": error, "method": "subscribe", "success": False, "symbol": symbol, **times})
            answers[-1]["req_id"] = request.get("req_id")
        return answers

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    break
                if message.data == "ping":
                    self.pings += 1
                    await ws.send_str("pong")
                    continue
                for answer in self._answers(json.loads(message.data)):
                    await ws.send_str(json.dumps(answer))
        finally:
            self._sockets.remove(ws)
        return ws

    async def bitget_candles(self, request: web.Request) -> web.Response:
        self.rest_calls += 1
        start, end = int(request.query["startTime"]), int(request.query["endTime"])
        rows = [bitget_row(t) for t in self.rest_rows.get(request.query["symbol"], []) if start <= t <= end]
        return web.json_response({"code": "00000", "msg": "success", "requestTime": 0, "data": rows})

    async def kraken_ohlc_rest(self, request: web.Request) -> web.Response:
        self.rest_calls += 1
        since = int(request.query.get("since", 0)) * 1000
        pair = request.query["pair"]
        rows = [
            [t // 1000, "26190.1", "26210.0", "26180.2", "26200.5", "26195.3", "1.2345", 12]
            for t in self.rest_rows.get(pair, [])
            if t >= since
        ]
        return web.json_response({"error": [], "result": {f"X{pair}": rows, "last": 0}})

    def start(self) -> DocumentedVenue:
        self._loop, port = serve_in_thread(
            [
                web.get("/ws", self.websocket),
                web.get("/api/v2/spot/market/candles", self.bitget_candles),
                web.get("/0/public/OHLC", self.kraken_ohlc_rest),
            ],
            f"documented-{self.venue}",
        )
        self.url = f"127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
