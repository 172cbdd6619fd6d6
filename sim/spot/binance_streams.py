"""The Binance market streams of the simulator: `/ws`, `/stream` websockets, fed each second of market."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import WSMsgType, web

from sim.spot.binance_wire import fmt, kline_event, levels
from sim.spot.market import INTERVAL_MINUTES
from sim.spot.state import SimState


class BinanceStreams:
    def __init__(self, state: SimState):
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/ws", self.websocket),
            web.get("/ws/{streams:.*}", self.websocket),
            web.get("/stream", self.websocket),
        ]

    def publish_tick(
        self,
        symbol: str,
        second: int,
        event_ms: int,
        trade: Any,
        first_id: int,
        last_id: int,
        bid_changes: list,
        ask_changes: list,
    ) -> None:
        hub = self.state.hub
        streams = hub.streams_of(symbol)
        if not streams:
            return
        lower = symbol.lower()
        spec = self.state.market.symbols[symbol]
        if f"{lower}@trade" in streams:
            hub.publish(
                f"{lower}@trade",
                {
                    "e": "trade",
                    "E": event_ms,
                    "s": symbol,
                    "t": trade.trade_id,
                    "p": fmt(trade.price),
                    "q": fmt(trade.qty),
                    "T": trade.time_ms,
                    "m": trade.buyer_is_maker,
                    "M": True,
                },
            )
        book = self.state.books[symbol]
        if f"{lower}@bookTicker" in streams:
            bids, asks = book.sides(1)
            hub.publish(
                f"{lower}@bookTicker",
                {
                    "u": book.update_id,
                    "s": symbol,
                    "b": fmt(bids[0][0]),
                    "B": fmt(bids[0][1]),
                    "a": fmt(asks[0][0]),
                    "A": fmt(asks[0][1]),
                },
            )
        diff = {
            "e": "depthUpdate",
            "E": event_ms,
            "s": symbol,
            "U": first_id,
            "u": last_id,
            "b": [[fmt(spec.price(p)), fmt(spec.qty(q))] for p, q in bid_changes],
            "a": [[fmt(spec.price(p)), fmt(spec.qty(q))] for p, q in ask_changes],
        }
        for stream in streams:
            name = stream.split("@", 1)[1]
            if name.startswith("depth"):
                depth = name.split("@")[0][len("depth") :]
                if not depth:
                    hub.publish(stream, diff)
                else:
                    bids, asks = book.sides(int(depth))
                    hub.publish(stream, {"lastUpdateId": book.update_id, "bids": levels(bids), "asks": levels(asks)})
            elif name.startswith("kline_"):
                self._publish_kline(stream, symbol, name[len("kline_") :], second, event_ms)

    def _publish_kline(self, stream: str, symbol: str, interval: str, second: int, event_ms: int) -> None:
        span = INTERVAL_MINUTES[interval] * 60
        open_second = second - second % span
        if second == open_second and open_second - span >= self.state.market.first_second:
            # The previous candle closed on this boundary: say so (k.x) before the new one starts.
            closed = self.state.market.candle(symbol, interval, (open_second - span) * 1000, open_second - 1)
            self.state.hub.publish(stream, kline_event(closed, event_ms))
        end = self.state.market.end_second
        if (second % 2 == 0 or second == open_second) and (end is None or open_second < end):
            current = self.state.market.candle(symbol, interval, open_second * 1000, second)
            self.state.hub.publish(stream, kline_event(current, event_ms))

    # --- websocket --------------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        if self.state.faults.ws_refused:
            raise web.HTTPServiceUnavailable()
        combined = request.path.startswith("/stream")
        if combined:
            streams = [s for s in request.query.get("streams", "").split("/") if s]
        else:
            streams = [s for s in request.match_info.get("streams", "").split("/") if s]
        ws = web.WebSocketResponse(heartbeat=self.state.ws_ping_interval, max_msg_size=1 << 16)
        await ws.prepare(request)
        connection = self.state.hub.connect(ws, combined)
        try:
            for stream in streams:
                if not self.state.hub.subscribe(connection, stream):
                    await ws.close(code=1008, message=b"Invalid stream name")
                    return ws
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                reply = self._control(connection, message.data)
                await connection.send(json.dumps(reply, separators=(",", ":")))
        finally:
            self.state.hub.disconnect(connection)
        return ws

    def _control(self, connection: Any, text: str) -> dict:
        try:
            message = json.loads(text)
            method, request_id = message["method"], message.get("id")
            params = message.get("params", [])
        except (ValueError, KeyError, TypeError):
            return {"error": {"code": 3, "msg": "Invalid JSON: expected a JSON object"}, "id": None}
        hub = self.state.hub
        if method == "SUBSCRIBE":
            bad = [s for s in params if not hub.subscribe(connection, str(s))]
            if bad:
                return {
                    "error": {"code": 2, "msg": f"Invalid request: invalid stream name '{bad[0]}'"},
                    "id": request_id,
                }
            return {"result": None, "id": request_id}
        if method == "UNSUBSCRIBE":
            for stream in params:
                hub.unsubscribe(connection, str(stream))
            return {"result": None, "id": request_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(connection.streams), "id": request_id}
        return {"error": {"code": 2, "msg": f"Invalid request: unknown method '{method}'"}, "id": request_id}
