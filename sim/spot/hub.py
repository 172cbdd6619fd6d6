"""Market-stream fan-out: which websocket connection listens to which stream, and the sending.

Each connection gets its own bounded queue and writer task, so one slow client never holds up the
market clock; a client that falls too far behind is disconnected, as the venue does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re

from aiohttp import web

log = logging.getLogger(__name__)

STREAM_PATTERN = re.compile(r"^([a-z0-9]+)@(trade|bookTicker|kline_([0-9a-zA-Z]+)|depth(5|10|20)?(@100ms|@1000ms)?)$")
QUEUE_LIMIT = 2000


class Connection:
    def __init__(self, ws: web.WebSocketResponse, combined: bool):
        self.ws = ws
        self.combined = combined
        self.streams: set[str] = set()
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_LIMIT)
        self.writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        while True:
            text = await self.queue.get()
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def send(self, text: str) -> None:
        self.push(text)

    def push(self, text: str) -> None:
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("sim.ws.slow_consumer_dropped", extra={"streams": sorted(self.streams)})
            self.abort()

    def abort(self) -> None:
        """Drops the TCP connection without a closing handshake, like a network failure."""
        self.writer.cancel()
        transport = self.ws._req.transport if self.ws._req is not None else None
        if transport is not None:
            transport.abort()


class Hub:
    def __init__(self, symbols: set[str], intervals: set[str]):
        self.symbols = {s.lower(): s for s in symbols}
        self.intervals = intervals
        self.connections: set[Connection] = set()
        self.subscribers: dict[str, set[Connection]] = {}
        self._by_symbol: dict[str, set[str]] = {}

    def valid(self, stream: str) -> bool:
        match = STREAM_PATTERN.match(stream)
        if match is None or match.group(1) not in self.symbols:
            return False
        return match.group(3) is None or match.group(3) in self.intervals

    def connect(self, ws: web.WebSocketResponse, combined: bool) -> Connection:
        connection = Connection(ws, combined)
        self.connections.add(connection)
        return connection

    def disconnect(self, connection: Connection) -> None:
        for stream in list(connection.streams):
            self.unsubscribe(connection, stream)
        self.connections.discard(connection)
        connection.writer.cancel()

    def subscribe(self, connection: Connection, stream: str) -> bool:
        if not self.valid(stream):
            return False
        connection.streams.add(stream)
        self.subscribers.setdefault(stream, set()).add(connection)
        self._by_symbol.setdefault(self.symbols[stream.split("@", 1)[0]], set()).add(stream)
        return True

    def unsubscribe(self, connection: Connection, stream: str) -> None:
        connection.streams.discard(stream)
        listeners = self.subscribers.get(stream)
        if listeners is None:
            return
        listeners.discard(connection)
        if not listeners:
            del self.subscribers[stream]
            symbol = self.symbols.get(stream.split("@", 1)[0])
            if symbol in self._by_symbol:
                self._by_symbol[symbol].discard(stream)

    def streams_of(self, symbol: str) -> set[str]:
        return self._by_symbol.get(symbol, set())

    def publish(self, stream: str, payload: dict) -> None:
        listeners = self.subscribers.get(stream)
        if not listeners:
            return
        raw = json.dumps(payload, separators=(",", ":"))
        wrapped = None
        for connection in list(listeners):
            if connection.combined:
                wrapped = wrapped or f'{{"stream":"{stream}","data":{raw}}}'
                connection.push(wrapped)
            else:
                connection.push(raw)

    def drop_all(self) -> None:
        for connection in list(self.connections):
            with contextlib.suppress(Exception):
                connection.abort()

    def connection_count(self) -> int:
        return len(self.connections)
