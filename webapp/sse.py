"""Server-sent event streams in the shape the htmx sse extension (static/vendor) reads: named events.

A page connects with `hx-ext="sse" sse-connect="<url>"`; an element inside it with `sse-swap="<name>"` swaps
in the HTML fragment an event of that name carries, one with `hx-trigger="sse:<name>"` fetches its own
fragment when such an event arrives (its data unused).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from flask import Response, stream_with_context
from redis.exceptions import RedisError

from core.infra.bus import get_redis

log = logging.getLogger(__name__)

RETRY = "retry: 2000\n\n"  # first frame of every stream: the browser reconnects 2 s after a drop


def frame(event: str, data: str) -> str:
    """One named event. Each line of a multi-line fragment goes in its own `data:` field; the browser joins
    them back with newlines."""
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in data.splitlines() or [""]) + "\n"


def response(frames: Iterator[str]) -> Response:
    """A streamed `text/event-stream` answer that no proxy buffers, run inside the request's context (so
    `current_user` and `render_template` work while it streams)."""
    return Response(
        stream_with_context(frames),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


SSE_LIFETIME_S = 300  # the browser reconnects; a gthread worker thread is not held forever


def relay(channel: str, first: str, render: Callable[[str], str]) -> Response:
    """A stream relaying one Redis pub/sub channel: `first` on connection (after subscribing, so nothing
    published meanwhile is lost), then `render(data)` per message, and a keep-alive comment every 15 s of
    silence (a closed tab shows up as a write error)."""

    def events() -> Iterator[str]:
        pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
        deadline = time.monotonic() + SSE_LIFETIME_S
        try:
            pubsub.subscribe(channel)
            yield first
            while time.monotonic() < deadline:
                message = pubsub.get_message(timeout=15)
                if message is None:
                    yield ": keep-alive\n\n"
                    continue
                yield render(message["data"])
        except RedisError as exc:
            # Ending the stream is enough: the browser reconnects (retry), and pages load their state anyway.
            log.warning("sse_stream_lost", extra={"channel": channel, "error": str(exc)[:200]})
        finally:
            pubsub.close()

    return response(events())
