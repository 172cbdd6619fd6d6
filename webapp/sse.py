"""Server-sent event streams in the shape the htmx sse extension (static/vendor) reads: named events.

A page connects with `hx-ext="sse" sse-connect="<url>"`; an element inside it with `sse-swap="<name>"` swaps
in the HTML fragment an event of that name carries, one with `hx-trigger="sse:<name>"` fetches its own
fragment when such an event arrives (its data unused).
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response, stream_with_context

RETRY = "retry: 2000\n\n"  # first frame of every stream: the browser reconnects 2 s after a drop


def frame(event: str, data: str) -> str:
    """One named event. Each line of a multi-line fragment goes in its own `data:` field; the browser joins
    them back with newlines."""
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in data.splitlines() or [""]) + "\n"


def response(frames: Iterator[str]) -> Response:
    """A streamed `text/event-stream` answer that no proxy buffers, run inside the request's context (so
    `current_user` and `render_template` work while it streams)."""
    return Response(stream_with_context(frames), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
