"""A real HTTP endpoint for Apprise's json:// target: records what it receives, answers a chosen status."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support import remember_secret


@dataclass
class Endpoint:
    port: int
    status: int = 200
    received: list[dict] = field(default_factory=list)
    # A path segment that stands for a channel's secret: no log line may ever show it (tests/zz_audit).
    token: str = field(default_factory=lambda: remember_secret("hook" + str(time.time_ns())[-10:]))

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/{self.token}"

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received


@contextmanager
def json_endpoint(status: int = 200) -> Iterator[Endpoint]:
    endpoint = Endpoint(port=0, status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            endpoint.received.append({"path": self.path, **body})
            self.send_response(endpoint.status)
            self.end_headers()

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()


def notifications_of(user_id: int, source: str) -> list:
    """The user's notifications from one source, oldest first."""
    from sqlalchemy import select

    from core.infra.db import new_session
    from core.models import Notification

    with new_session() as session:
        return list(
            session.scalars(
                select(Notification)
                .where(Notification.user_id == user_id, Notification.source == source)
                .order_by(Notification.id)
            )
        )
