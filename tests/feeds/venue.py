"""A scripted Binance-protocol venue on loopback (aiohttp): the kline websocket and REST klines over
real candles from the configured data folder (`data_dir`), with a clock the test moves and the failures
the feed must survive."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time
from dataclasses import dataclass, field

import pandas as pd
from aiohttp import WSMsgType, web

from bench.data import data_dir

MINUTE_MS = 60_000


def serve_in_thread(routes: list[web.RouteDef], name: str) -> tuple[asyncio.AbstractEventLoop, int]:
    """An aiohttp app on a free loopback port, its event loop run by a daemon thread: (that loop, the port)."""
    ready: concurrent.futures.Future = concurrent.futures.Future()

    def run() -> None:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.add_routes(routes)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        ready.set_result((loop, site._server.sockets[0].getsockname()[1]))
        loop.run_forever()

    threading.Thread(target=run, daemon=True, name=name).start()
    return ready.result(10)


def real_minutes(symbol: str, rows: int) -> list[tuple]:
    frame = pd.read_csv(data_dir() / f"{symbol}-1m.csv", nrows=rows, dtype=str)
    return [(int(r.open_time), r.open, r.high, r.low, r.close, r.volume) for r in frame.itertuples()]


def kline_message(symbol: str, row: tuple, closed: bool, event_ms: int) -> str:
    t, o, h, low, c, v = row
    return json.dumps(
        {
            "stream": f"{symbol.lower()}@kline_1m",
            "data": {
                "e": "kline",
                "E": event_ms,
                "s": symbol,
                "k": {
                    "t": t,
                    "T": t + MINUTE_MS - 1,
                    "s": symbol,
                    "i": "1m",
                    "o": o,
                    "h": h,
                    "l": low,
                    "c": c,
                    "v": v,
                    "x": closed,
                },
            },
        }
    )


@dataclass
class ScriptedVenue:
    minutes: dict[str, list[tuple]]
    revealed: int = 1  # closed minutes that exist so far (per symbol)
    refuse: bool = False
    frozen: bool = False
    drop_every: int = 0  # close each connection after this many sent messages
    connects: list[float] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)
    rest_calls: int = 0
    url: str = ""
    _connections: dict = field(default_factory=dict)  # id -> (ws, state)
    _loop: asyncio.AbstractEventLoop | None = None

    @property
    def start_ms(self) -> int:
        return next(iter(self.minutes.values()))[0][0]

    def now(self) -> float:
        """The venue's clock (seconds): just after the last revealed minute closed."""
        return (self.start_ms + self.revealed * MINUTE_MS) / 1000 + 0.5

    # --- driven by the test thread --------------------------------------------------------------

    def advance(self, send: bool = True, symbols: list[str] | None = None) -> None:
        """One more minute closes; its kline is sent (unless `send` is False: a message lost)."""
        self.revealed += 1
        if send:
            for symbol in symbols or list(self.minutes):
                row = self.minutes[symbol][self.revealed - 1]
                self.send(kline_message(symbol, row, True, row[0] + MINUTE_MS), symbol)

    def send(self, text: str, symbol: str | None = None) -> None:
        self._call(self._broadcast(text, symbol))

    def drop_all(self) -> None:
        self._call(self._drop())

    def _call(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    # --- server side ----------------------------------------------------------------------------

    async def _broadcast(self, text: str, symbol: str | None) -> None:
        for ws, state in list(self._connections.values()):
            if symbol is None or f"{symbol.lower()}@kline_1m" in state["streams"]:
                await ws.send_str(text)
                state["sent"] += 1
                if self.drop_every and state["sent"] >= self.drop_every:
                    await ws.close()

    async def _drop(self) -> None:
        for ws, _ in list(self._connections.values()):
            ws._req.transport.abort()

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if self.refuse:
            raise web.HTTPServiceUnavailable()
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connects.append(time.monotonic())
        state = {"streams": set(request.query.get("streams", "").split("/")), "sent": 0}
        self._connections[id(ws)] = (ws, state)
        try:
            while True:
                if self.frozen:  # not reading: pings go unanswered, like a dead link
                    await asyncio.sleep(0.05)
                    continue
                try:
                    message = await ws.receive(timeout=0.1)
                except TimeoutError:
                    continue
                if message.type != WSMsgType.TEXT:
                    break
                request_body = json.loads(message.data)
                streams = request_body.get("params", [])
                bad = [s for s in streams if s.split("@")[0].upper() not in self.minutes]
                self.subscriptions.extend(streams)
                if bad:
                    await ws.send_str(
                        json.dumps(
                            {"error": {"code": 2, "msg": f"Invalid stream {bad[0]}"}, "id": request_body.get("id")}
                        )
                    )
                else:
                    state["streams"].update(streams)
                    await ws.send_str(json.dumps({"result": None, "id": request_body.get("id")}))
        finally:
            self._connections.pop(id(ws), None)
        return ws

    async def klines(self, request: web.Request) -> web.Response:
        self.rest_calls += 1
        rows = self.minutes[request.query["symbol"]][: self.revealed]
        start = int(request.query.get("startTime", 0))
        end = int(request.query.get("endTime", 2**62))
        limit = int(request.query.get("limit", 500))
        chosen = [r for r in rows if start <= r[0] <= end][:limit]
        return web.json_response(
            [[t, o, h, low, c, v, t + MINUTE_MS - 1, "0", 1, "0", "0", "0"] for t, o, h, low, c, v in chosen]
        )

    def start(self) -> ScriptedVenue:
        self._loop, port = serve_in_thread(
            [web.get("/stream", self.websocket), web.get("/api/v3/klines", self.klines)], "scripted-venue"
        )
        self.url = f"127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
