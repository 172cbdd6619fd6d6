"""HTTP/1.1 over kept-alive connections, for the order path of the perp venues.

A general-purpose client (aiohttp) spends ~0.3 ms of Python per request between "send" and the
bytes reaching the socket, and two legs leave one after the other from one thread. Here a request
on a warm connection is one `transport.write` of prebuilt bytes in the caller's first step, so
both legs of a trade are on the wire within microseconds of each other.

Scope, on purpose: one request at a time per connection (no pipelining), a few connections per
host, Content-Length or chunked bodies, no compression, no redirects, TLS for https URLs.
A request on a reused connection that the peer had already closed fails before any reply byte:
an idempotent GET is retried once on a fresh connection; anything else raises, because the venue
may have acted on it (the caller resolves such an unknown result from the venue's state).
"""

from __future__ import annotations

import asyncio
import contextvars
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

# When a caller sets a list here, each request appends the instant its bytes were handed to the
# socket: "sent" means on the wire, not "handed to the adapter" (latency measurement of the arb engine).
SENT_AT: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("http_sent_at", default=None)
MAX_IDLE_S = 50.0  # below the usual 60 s keep-alive of servers: never reuse a socket they are closing
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024


class HttpProtocolError(ValueError):
    """The peer's reply is not HTTP/1.1 as expected (bad status line, framing, size)."""


class StaleConnection(ConnectionError):
    """A reused connection closed before any byte of the reply: the peer may or may not have read the request."""


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = field(default_factory=time.monotonic)
    reused: bool = False

    def usable(self) -> bool:
        return (
            not self.reader.at_eof()
            and not self.writer.is_closing()
            and time.monotonic() - self.idle_since < MAX_IDLE_S
        )

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class KeepAliveClient:
    def __init__(self, base_url: str, timeout: float = 5.0, max_idle: int = 4):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.timeout = timeout
        self.max_idle = max_idle
        default_port = (parts.scheme == "https" and self.port == 443) or (parts.scheme == "http" and self.port == 80)
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal
        self._host_header = host if default_port else f"{host}:{self.port}"
        self._idle: list[Connection] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        target = self.base_path + path + (f"?{urlencode(params)}" if params else "")
        data = self._encode(method, target, headers or {}, body)
        async with asyncio.timeout(self.timeout):
            try:
                return await self._exchange(self._take_idle() or await self._open(), data, method)
            except StaleConnection:
                if method != "GET":
                    raise
                return await self._exchange(await self._open(), data, method)

    async def keep_warm(self, connections: int) -> int:
        """Have `connections` open idle sockets ready (a trade must not wait for a TCP/TLS handshake);
        returns how many were opened."""
        self._drop_unusable()
        opened = 0
        async with asyncio.timeout(self.timeout):
            while len(self._idle) < min(connections, self.max_idle):
                self._release(await self._open())
                opened += 1
        return opened

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _encode(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host_header}", "Connection: keep-alive"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")

    def _drop_unusable(self) -> None:
        for conn in [conn for conn in self._idle if not conn.usable()]:
            self._idle.remove(conn)
            conn.close()

    def _take_idle(self) -> Connection | None:
        self._drop_unusable()
        if not self._idle:
            return None
        conn = self._idle.pop()
        conn.reused = True
        return conn

    def _release(self, conn: Connection) -> None:
        if len(self._idle) < self.max_idle and conn.usable():
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()

    async def _open(self) -> Connection:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.ssl, server_hostname=self.host if self.ssl else None, limit=MAX_HEADER_BYTES
        )
        return Connection(reader, writer)

    async def _exchange(self, conn: Connection, data: bytes, method: str) -> Response:
        conn.writer.write(data)  # straight to the socket when its buffer is empty (the usual case)
        sent = SENT_AT.get()
        if sent is not None:
            sent.append(time.perf_counter())
        try:
            response, keep = await self._read_response(conn.reader, method)
        except StaleConnection as exc:
            conn.close()
            if conn.reused:
                raise
            raise ConnectionResetError("a new connection closed before the reply") from exc
        except BaseException:
            conn.close()  # the state of the exchange is unknown: never reuse this socket
            raise
        if keep:
            self._release(conn)
        else:
            conn.close()
        return response

    async def _read_response(self, reader: asyncio.StreamReader, method: str) -> tuple[Response, bool]:
        try:
            status_line = await reader.readuntil(b"\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise StaleConnection("connection closed before the reply") from exc
            raise
        version, status, headers = await read_head(reader, status_line)
        while 100 <= status < 200:  # interim replies (100 Continue, 103 Early Hints): the answer follows
            version, status, headers = await read_head(reader, await reader.readuntil(b"\r\n"))
        keep = headers.get("connection", "").lower() != "close" and version != "HTTP/1.0"
        if method == "HEAD" or status in (204, 304):
            return Response(status, headers, b""), keep
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return Response(status, headers, await read_chunked(reader)), keep
        if "content-length" in headers:
            length = parse_size(headers["content-length"], 10)
            return Response(status, headers, await reader.readexactly(length)), keep
        body = await reader.read(MAX_BODY_BYTES + 1)  # no length given: the body ends when the peer closes
        while len(body) <= MAX_BODY_BYTES and (more := await reader.read(MAX_BODY_BYTES + 1 - len(body))):
            body += more
        if len(body) > MAX_BODY_BYTES:
            raise HttpProtocolError("body too large")
        return Response(status, headers, body), False


async def read_head(reader: asyncio.StreamReader, status_line: bytes) -> tuple[str, int, dict[str, str]]:
    version, _, rest = status_line.decode("latin-1").partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise HttpProtocolError(f"bad status line {status_line[:60]!r}")
    return version, int(rest[:3]), parse_headers(await read_field_lines(reader))


def parse_size(text: str, base: int) -> int:
    """A Content-Length (base 10) or chunk size (base 16): digits only, within MAX_BODY_BYTES."""
    digits = text.strip()
    allowed = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
    if not digits or any(ch not in allowed for ch in digits):
        raise HttpProtocolError(f"bad size {text[:40]!r}")
    size = int(digits, base)
    if size > MAX_BODY_BYTES:
        raise HttpProtocolError(f"size {size} above {MAX_BODY_BYTES}")
    return size


async def read_field_lines(reader: asyncio.StreamReader) -> list[bytes]:
    """Header (or trailer) lines up to the empty line that ends them."""
    lines, size = [], 0
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        size += len(line)
        if size > MAX_HEADER_BYTES:
            raise HttpProtocolError("headers too large")
        lines.append(line)
    return lines


def parse_headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw in lines:
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise HttpProtocolError(f"bad header line {raw[:60]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = parse_size(size_line.split(b";")[0].decode("latin-1"), 16)
        total += size
        if total > MAX_BODY_BYTES:
            raise HttpProtocolError("chunked body too large")
        if size == 0:
            await read_field_lines(reader)  # trailers, if any
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise HttpProtocolError("chunk not followed by CRLF")
