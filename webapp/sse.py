"""Server-sent events relayed from one Redis pub/sub channel to one browser page."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import Response, stream_with_context
from redis.exceptions import RedisError

from core.bus import get_redis

log = logging.getLogger(__name__)
SSE_LIFETIME_S = 300  # the browser reconnects; a gthread worker thread is not held forever


def relay(channel: str, first: str, render: Callable[[str], str]) -> Response:
    """`first` on connection (after subscribing, so nothing published meanwhile is lost), then `render(data)`
    for each message; a keep-alive comment every 15 s of silence (a closed tab shows up as a write error)."""

    def events():
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

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
