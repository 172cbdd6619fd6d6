"""The venue's raw answers, heard where every adapter reads them (Exchange._json), for whoever listens.

An order's audit trail keeps what the venue said to each request about it (core.orders.answers stores
it). The adapters need not carry anything: every venue's HTTP answer goes through Exchange._json, which
calls `hear`; a caller that wants the answers of a block of venue calls wraps it in `listen(kind)`.
Nested `listen` blocks share the outer block's list and only change the kind (a sync that re-sends an
order hears a query, then a place). Only answers are kept, never requests: the requests carry the
signature and key, the answers carry neither (and known secrets are masked anyway).

Each answer is bounded: JSON up to MAX_ANSWER_CHARS serialized is kept as parsed; a longer one, or a
body that is not JSON, is kept as {"text": first MAX_ANSWER_CHARS characters, "truncated"/"not_json"}.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import requests

from core.infra.security import redact_value

AnswerKind = Literal["place", "query", "cancel"]
MAX_ANSWER_CHARS = 16_000


@dataclass(frozen=True)
class HeardAnswer:
    kind: AnswerKind
    at: datetime
    http_status: int
    path: str
    payload: Any  # JSON value, bounded (see bounded_payload)

    @property
    def digest(self) -> str:
        """Same kind, status and body: the same answer (a resting order queried every pass is kept once)."""
        text = json.dumps([self.kind, self.http_status, self.payload], sort_keys=True, default=str)
        return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


_listening: ContextVar[tuple[AnswerKind, list[HeardAnswer]] | None] = ContextVar("venue_answers", default=None)


@contextmanager
def listen(kind: AnswerKind) -> Iterator[list[HeardAnswer]]:
    """Collect the venue's answers heard in this block (and this thread/task) as `kind`."""
    outer = _listening.get()
    heard = outer[1] if outer is not None else []
    token = _listening.set((kind, heard))
    try:
        yield heard
    finally:
        _listening.reset(token)


@contextmanager
def unheard() -> Iterator[None]:
    """A block whose answers are about the venue, not an order (its clock, its markets): not kept."""
    token = _listening.set(None)
    try:
        yield
    finally:
        _listening.reset(token)


def bounded_payload(text: str, parsed: Any = None, *, is_json: bool) -> Any:
    if not is_json:
        return {"not_json": True, "text": redact_value(text[:MAX_ANSWER_CHARS])}
    if len(text) > MAX_ANSWER_CHARS:
        return {"truncated": True, "length": len(text), "text": redact_value(text[:MAX_ANSWER_CHARS])}
    return redact_value(parsed)


def hear(response: requests.Response, parsed: Any = None, *, is_json: bool = True) -> None:
    """Called by Exchange._json for every answer; costs nothing unless someone listens."""
    listening = _listening.get()
    if listening is None:
        return
    kind, heard = listening
    path = f"{response.request.method} {urlsplit(response.url).path}"[:64]  # never the query: it is signed
    payload = bounded_payload(response.text, parsed, is_json=is_json)
    heard.append(HeardAnswer(kind, datetime.now(UTC), response.status_code, path, payload))
