"""Strictly increasing nonces per API key, shared by every process that uses the key.

Several Celery workers sign with the same Kraken key; a nonce taken from each process's clock would
arrive out of order and be refused (`EAPI:Invalid nonce`). One Redis counter per key hands out the
next value atomically. Each call also lifts the counter to the current time in microseconds, so the
sequence stays ahead of anything sent before (e.g. after a Redis flush or by another tool using the
same clock-based scheme).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

import redis as redis_lib

from core.infra.bus import venue_nonce

# INCR, then lift to the clock floor if we fell behind it: one atomic step on the server.
_NEXT_NONCE = """
local value = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if value < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  return floor
end
return value
"""


def key_fingerprint(api_key: str) -> str:
    """A short stable id for an API key, safe to put in Redis key names and logs."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def _now_us() -> int:
    return time.time_ns() // 1000


class NonceSource:
    """`next()` returns a nonce larger than every nonce returned before for the same (venue, key)."""

    def __init__(
        self, redis: redis_lib.Redis | None, *, venue: str, api_key: str, clock_us: Callable[[], int] = _now_us
    ):
        self._redis = redis
        self._key = venue_nonce(venue, key_fingerprint(api_key))
        self._clock_us = clock_us
        self._script = redis.register_script(_NEXT_NONCE) if redis is not None else None
        # Without Redis (a single process, e.g. a one-off CLI call) a locked counter is enough.
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> int:
        floor = self._clock_us()
        if self._script is not None:
            return int(self._script(keys=[self._key], args=[floor]))
        with self._lock:
            self._last = max(self._last + 1, floor)
            return self._last

    def __repr__(self) -> str:
        return f"NonceSource({self._key!r}, shared={self._script is not None})"
