"""KeepAliveClient over real sockets: each test runs a tiny asyncio TCP server on 127.0.0.1 that writes
raw HTTP/1.1 bytes exactly as the test needs (framing, early closes, silence, garbage), and drives the
client with asyncio.run. Nothing inside the client is mocked."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from core.exchanges import keepalive_http
from core.exchanges.errors import MalformedResponse, Unavailable
from core.exchanges.keepalive_http import HttpProtocolError, KeepAliveClient, StaleConnection
from core.exchanges.perp.venue import JsonHttp


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes
    conn: int  # index of the accepted connection it came on
    received_at: float  # time.perf_counter() once fully read


Handler = Callable[["RawServer", asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@dataclass
class RawServer:
    """asyncio TCP server on 127.0.0.1:0; `handler(server, reader, writer, conn_index)` speaks for each
    accepted connection. Counts accepts and records every request read with `read_request`."""

    handler: Handler
    accepts: int = 0
    requests: list[Request] = field(default_factory=list)
    closed_by_client: list[int] = field(default_factory=list)  # conn indexes the client closed

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks: list[asyncio.Task] = []
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        await self._server.wait_closed()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self.accepts
        self.accepts += 1
        self._tasks.append(asyncio.current_task())
        try:
            await self.handler(self, reader, writer, index)
        except asyncio.CancelledError:
            pass  # torn down at the end of the test (Python 3.11's start_server would log the cancellation)
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader, conn: int) -> Request | None:
        """One request (head + Content-Length body), or None when the client closed the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed_by_client.append(conn)
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        request = Request(method, target, version, headers, body, conn, time.perf_counter())
        self.requests.append(request)
        return request

    async def wait_client_close(self, reader: asyncio.StreamReader, conn: int) -> None:
        """Stay silent until the client closes this connection."""
        try:
            while await reader.read(4096):
                pass
        except ConnectionError:
            pass
        self.closed_by_client.append(conn)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 0.5) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "server condition not reached in time"
            await asyncio.sleep(0.005)


def reply(body: bytes = b'{"ok":true}', status: str = "200 OK", extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    ).encode("latin-1") + body


async def answer_every_request(server: RawServer, reader, writer, conn: int) -> None:
    """A well-behaved keep-alive server: answers each request with a JSON echo of what it received."""
    while (request := await server.read_request(reader, conn)) is not None:
        writer.write(
            reply(
                json.dumps(
                    {"conn": conn, "method": request.method, "target": request.target, "body": request.body.decode()}
                ).encode()
            )
        )
        await writer.drain()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # not listening: connecting is refused


# 1 -----------------------------------------------------------------------------------------------------


def reply_once_with(raw: bytes):
    """A server handler that answers the first request with `raw` bytes, then waits for the client to close."""

    async def handler(server, reader, writer, conn):
        await server.read_request(reader, conn)
        writer.write(raw)
        await writer.drain()
        await server.wait_client_close(reader, conn)

    return handler


def test_sequential_requests_reuse_one_connection_and_send_correct_request_lines():
    async def main():
        async with RawServer(answer_every_request) as server:
            client = KeepAliveClient(server.url + "/v1")
            try:
                first = await client.request(
                    "POST", "/orders", body=b'{"size":"0.01"}', headers={"Content-Type": "application/json"}
                )
                second = await client.request("GET", "/orders", params={"symbol": "BTC-PERP", "limit": 5})
            finally:
                await client.close()
            return server, first, second

    server, first, second = asyncio.run(main())
    assert server.accepts == 1
    assert first.status == 200 and second.status == 200
    assert json.loads(first.body)["conn"] == json.loads(second.body)["conn"] == 0

    post, get = server.requests
    host = f"127.0.0.1:{server.port}"
    assert (post.method, post.target, post.version) == ("POST", "/v1/orders", "HTTP/1.1")
    assert post.headers["host"] == host
    assert post.headers["content-length"] == str(len(b'{"size":"0.01"}'))
    assert post.headers["content-type"] == "application/json"
    assert post.body == b'{"size":"0.01"}'
    assert (get.method, get.target, get.version) == ("GET", "/v1/orders?symbol=BTC-PERP&limit=5", "HTTP/1.1")
    assert get.headers["host"] == host
    assert "content-length" not in get.headers
    assert get.body == b""


# 2 -----------------------------------------------------------------------------------------------------


def test_chunked_body_with_extension_and_trailer_is_reassembled_exactly():
    tail = b" world, over several chunks"
    pieces = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n",
        b"5\r\nhello\r\n",
        b"1;name=value\r\n,\r\n",
        b"%X\r\n%s\r\n" % (len(tail), tail),
        b"0\r\nX-Checksum: abc123\r\n\r\n",
    ]

    async def handler(server, reader, writer, conn):
        await server.read_request(reader, conn)
        for piece in pieces:  # one write per piece, flushed apart: the client must reassemble across reads
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.005)
        await answer_every_request(server, reader, writer, conn)  # same socket must still be in sync

    async def main():
        async with RawServer(handler) as server:
            client = KeepAliveClient(server.url)
            try:
                chunked = await client.request("GET", "/chunked")
                after = await client.request("GET", "/after")
            finally:
                await client.close()
            return server, chunked, after

    server, chunked, after = asyncio.run(main())
    assert chunked.status == 200
    assert chunked.body == b"hello, world, over several chunks"
    assert chunked.headers["transfer-encoding"] == "chunked"
    assert after.status == 200 and json.loads(after.body)["target"] == "/after"  # trailer fully consumed
    assert server.accepts == 1


# 3 -----------------------------------------------------------------------------------------------------


def test_connection_close_reply_is_read_and_next_request_opens_new_connection():
    async def handler(server, reader, writer, conn):
        if conn == 0:
            await server.read_request(reader, conn)
            writer.write(reply(b'{"first":1}', extra="Connection: close\r\n"))
            await writer.drain()
            await server.wait_client_close(reader, conn)  # the server keeps its end open: the client must close
        else:
            await answer_every_request(server, reader, writer, conn)

    async def main():
        async with RawServer(handler) as server:
            client = KeepAliveClient(server.url)
            try:
                first = await client.request("GET", "/a")
                second = await client.request("GET", "/b")
                await server.wait_for(lambda: 0 in server.closed_by_client)
            finally:
                await client.close()
            return server, first, second

    server, first, second = asyncio.run(main())
    assert first.status == 200 and first.body == b'{"first":1}'
    assert first.headers["connection"] == "close"
    assert json.loads(second.body)["conn"] == 1
    assert server.accepts == 2
    assert [r.conn for r in server.requests] == [0, 1]


# 4 -----------------------------------------------------------------------------------------------------


def test_get_after_server_closed_idle_connection_succeeds_on_fresh_connection():
    async def handler(server, reader, writer, conn):
        if conn == 0:
            await server.read_request(reader, conn)
            writer.write(reply(b'{"first":1}'))  # keep-alive reply (no Connection: close) ...
            await writer.drain()
            return  # ... then the server closes the socket (RawServer closes on return)
        await answer_every_request(server, reader, writer, conn)

    async def main():
        async with RawServer(handler) as server:
            client = KeepAliveClient(server.url)
            try:
                first = await client.request("GET", "/a")
                await asyncio.sleep(0.05)
                second = await client.request("GET", "/b")
            finally:
                await client.close()
            return server, first, second

    server, first, second = asyncio.run(main())
    assert first.body == b'{"first":1}'
    assert second.status == 200 and json.loads(second.body) == {"conn": 1, "method": "GET", "target": "/b", "body": ""}
    assert server.accepts == 2


def test_get_on_reused_connection_closed_after_request_written_is_retried_once_on_fresh_connection():
    async def handler(server, reader, writer, conn):
        if conn == 0:
            await server.read_request(reader, conn)
            writer.write(reply(b'{"first":1}'))
            await writer.drain()
            await server.read_request(reader, conn)  # reads the second GET, then closes without a byte
            return
        await answer_every_request(server, reader, writer, conn)

    async def main():
        async with RawServer(handler) as server:
            client = KeepAliveClient(server.url)
            try:
                await client.request("GET", "/a")
                second = await client.request("GET", "/b", params={"x": 1})
            finally:
                await client.close()
            return server, second

    server, second = asyncio.run(main())
    assert second.status == 200 and json.loads(second.body)["conn"] == 1
    assert [(r.conn, r.target) for r in server.requests] == [(0, "/a"), (0, "/b?x=1"), (1, "/b?x=1")]
    assert server.accepts == 2


def test_post_on_connection_closed_after_request_written_raises_and_is_not_resent():
    async def handler(server, reader, writer, conn):
        await server.read_request(reader, conn)
        writer.write(reply(b'{"warm":1}'))
        await writer.drain()
        await server.read_request(reader, conn)  # reads the POST, then closes without replying
        return

    async def main():
        async with RawServer(handler) as server:
            client = KeepAliveClient(server.url)
            try:
                await client.request("GET", "/warm")
                with pytest.raises(ConnectionError) as caught:
                    await client.request("POST", "/orders", body=b'{"size":"1"}')
                await asyncio.sleep(0.05)  # a resend, if any, would have reached the server by now
            finally:
                await client.close()
            return server, caught.value

    server, error = asyncio.run(main())
    assert isinstance(error, StaleConnection)
    posts = [r for r in server.requests if r.method == "POST"]
    assert len(posts) == 1 and posts[0].body == b'{"size":"1"}'
    assert server.accepts == 1


# 5 -----------------------------------------------------------------------------------------------------


def test_sent_at_contextvar_receives_one_perf_counter_between_call_and_reply():
    async def handler(server, reader, writer, conn):
        await server.read_request(reader, conn)
        await asyncio.sleep(0.02)  # the reply arrives clearly after the request left
        writer.write(reply())
        await writer.drain()
        await server.wait_client_close(reader, conn)

    async def main():
        async with RawServer(handler) as server:
            client = KeepAliveClient(server.url)
            await client.keep_warm(1)
            box: list[float] = []
            token = keepalive_http.SENT_AT.set(box)
            try:
                before = time.perf_counter()
                response = await client.request("POST", "/orders", body=b"{}")
                after = time.perf_counter()
            finally:
                keepalive_http.SENT_AT.reset(token)
                await client.close()
            return server, response, box, before, after

    server, response, box, before, after = asyncio.run(main())
    assert response.status == 200
    assert len(box) == 1
    (sent,) = box
    assert before <= sent <= server.requests[0].received_at <= after
    assert after - sent >= 0.015  # the stamp is the send instant, not the reply's arrival


def test_sent_at_is_untouched_when_no_list_is_set():
    async def main():
        async with RawServer(answer_every_request) as server:
            client = KeepAliveClient(server.url)
            try:
                assert keepalive_http.SENT_AT.get() is None
                await client.request("GET", "/x")
                return keepalive_http.SENT_AT.get()
            finally:
                await client.close()

    assert asyncio.run(main()) is None


# 6 -----------------------------------------------------------------------------------------------------


def test_silent_server_times_out_within_client_timeout_and_connection_is_not_reused():
    async def handler(server, reader, writer, conn):
        if conn == 0:
            await server.read_request(reader, conn)
            await server.wait_client_close(reader, conn)  # never answers
            return
        await answer_every_request(server, reader, writer, conn)

    async def main():
        async with RawServer(handler) as server:
            client = KeepAliveClient(server.url, timeout=0.3)
            try:
                started = time.monotonic()
                with pytest.raises(TimeoutError):
                    await client.request("GET", "/silent")
                elapsed = time.monotonic() - started
                await server.wait_for(lambda: 0 in server.closed_by_client)
                after = await client.request("GET", "/next")
            finally:
                await client.close()
            return server, elapsed, after

    server, elapsed, after = asyncio.run(main())
    assert elapsed >= 0.28  # it waited its 0.3 s timeout before giving up (TimeoutError above)
    assert json.loads(after.body)["conn"] == 1
    assert server.accepts == 2


# 7 -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"garbage\r\n\r\n", id="bad-status-line"),
        pytest.param(b"HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n", id="status-without-code"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nNoColonHere\r\n\r\n{}", id="header-line-without-colon"),
        pytest.param(
            f"HTTP/1.1 200 OK\r\nContent-Length: {keepalive_http.MAX_BODY_BYTES + 1}\r\n\r\n".encode(),
            id="content-length-above-max-body-bytes",
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", id="negative-content-length"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", id="bad-chunk-size"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY4\r\ndefg\r\n0\r\n\r\n",
            id="chunk-data-not-followed-by-crlf",
        ),
    ],
)
def test_malformed_reply_raises_http_protocol_error_and_drops_connection(raw):
    handler = reply_once_with(raw)

    async def main():
        async with RawServer(handler) as server:
            client = KeepAliveClient(server.url, timeout=0.5)
            try:
                with pytest.raises(HttpProtocolError):
                    await client.request("GET", "/x")
                await server.wait_for(lambda: 0 in server.closed_by_client)  # the client closed the socket
            finally:
                await client.close()

    asyncio.run(main())


# 8 -----------------------------------------------------------------------------------------------------


def test_keep_warm_opens_two_idle_connections_and_next_request_uses_one_of_them():
    async def main():
        async with RawServer(answer_every_request) as server:
            client = KeepAliveClient(server.url)
            try:
                opened = await client.keep_warm(2)
                await server.wait_for(lambda: server.accepts == 2)
                again = await client.keep_warm(2)
                response = await client.request("GET", "/x")
                await asyncio.sleep(0.02)
            finally:
                await client.close()
            return server, opened, again, response

    server, opened, again, response = asyncio.run(main())
    assert (opened, again) == (2, 0)
    assert server.accepts == 2
    assert json.loads(response.body)["conn"] in (0, 1)


# 9 -----------------------------------------------------------------------------------------------------


def _json_http_call(raw: bytes):
    handler = reply_once_with(raw)

    async def main():
        async with RawServer(handler) as server:
            http = JsonHttp(server.url, venue="testvenue", timeout=0.5)
            try:
                await http.request("GET", "/x")
            finally:
                await http.close()

    asyncio.run(main())


def test_json_http_non_json_200_raises_malformed_response():
    with pytest.raises(MalformedResponse) as caught:
        _json_http_call(reply(b"<html>hello</html>", extra="Content-Type: text/html\r\n"))
    assert caught.value.code == 200 and caught.value.venue == "testvenue"


def test_json_http_non_json_502_raises_unavailable():
    with pytest.raises(Unavailable) as caught:
        _json_http_call(reply(b"<html>Bad Gateway</html>", status="502 Bad Gateway"))
    assert caught.value.code == 502 and caught.value.venue == "testvenue"


def test_json_http_refused_connection_raises_unavailable():
    async def main():
        http = JsonHttp(f"http://127.0.0.1:{closed_port()}", venue="testvenue", timeout=0.5)
        try:
            await http.request("POST", "/orders", body={"size": "1"})
        finally:
            await http.close()

    with pytest.raises(Unavailable) as caught:
        asyncio.run(main())
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_json_http_protocol_error_raises_unavailable():
    with pytest.raises(Unavailable) as caught:
        _json_http_call(b"garbage\r\n\r\n")
    assert isinstance(caught.value.__cause__, HttpProtocolError)


# Beyond the brief's list: framings a venue or proxy may legitimately send ---------------------------------


def test_close_delimited_body_is_read_until_the_peer_closes():
    """No Content-Length, no chunking: RFC 9112 §6.3 says the body runs until the server closes."""

    async def handler(server, reader, writer, conn):
        await server.read_request(reader, conn)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + b'{"part":')
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b'"two"}')
        await writer.drain()
        # RawServer closes the socket on return: that ends the body

    async def main():
        async with RawServer(handler) as server:
            client = KeepAliveClient(server.url, timeout=0.5)
            try:
                return await client.request("GET", "/x")
            finally:
                await client.close()

    response = asyncio.run(main())
    assert response.body == b'{"part":"two"}'


def test_interim_1xx_reply_is_skipped_and_final_reply_returned():
    """RFC 9110 §15.2: a client must accept 1xx replies it did not ask for before the final one."""

    async def handler(server, reader, writer, conn):
        while await server.read_request(reader, conn) is not None:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + reply(f'{{"n":{len(server.requests)}}}'.encode()))
            await writer.drain()

    async def main():
        async with RawServer(handler) as server:
            client = KeepAliveClient(server.url, timeout=0.5)
            try:
                first = await client.request("POST", "/orders", body=b"{}")
                second = await client.request("GET", "/orders")
            finally:
                await client.close()
            return first, second

    first, second = asyncio.run(main())
    assert (first.status, first.body) == (200, b'{"n":1}')
    assert (second.status, second.body) == (200, b'{"n":2}')
