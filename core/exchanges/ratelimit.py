"""Per-venue and per-key request budgets shared by all processes through Redis (`limits` library).

Every adapter call acquires its cost first: against the venue-wide limits (IP weight budgets) and
against the per-key limits (order/account budgets). When the budget is spent the caller waits, up to
`max_wait_s`, then gets RateLimited instead of hammering the venue. A 429 from the venue blocks the
whole venue (all processes) until its Retry-After has passed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import redis as redis_lib
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

from core.exchanges.errors import RateLimited
from core.exchanges.nonce import key_fingerprint

log = logging.getLogger(__name__)

PREFIX = "aristobot:ratelimit"


class RateLimiter:
    def __init__(self, redis: redis_lib.Redis | None, *, venue: str, api_key: str = "",
                 venue_limits: Sequence[str] = (), key_limits: Sequence[str] = (),
                 max_wait_s: float = 10.0, sleep: Callable[[float], None] = time.sleep):
        self.venue = venue
        self._key_id = key_fingerprint(api_key) if api_key else "public"
        self._venue_items: list[RateLimitItem] = [parse(s) for s in venue_limits]
        self._key_items: list[RateLimitItem] = [parse(s) for s in key_limits]
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        self._redis = redis
        # Without Redis the budget is per process only: fine for a single CLI call, not for workers.
        storage = (RedisStorage("redis://", connection_pool=redis.connection_pool, key_prefix=PREFIX)
                   if redis is not None else MemoryStorage())
        self._limiter = MovingWindowRateLimiter(storage)
        self._block_key = f"{PREFIX}:blocked:{venue}"
        self._local_block_until = 0.0

    def _checks(self, cost: int, per_key: bool) -> list[tuple[RateLimitItem, tuple[str, ...], int]]:
        # Venue budgets are weights (a heavy endpoint costs more); key budgets count requests.
        key_items = self._key_items if per_key else []
        return ([(item, (self.venue,), cost) for item in self._venue_items]
                + [(item, (self.venue, self._key_id), 1) for item in key_items])

    def blocked_for(self) -> float:
        """Seconds left on a venue-wide block set by a 429/418."""
        if self._redis is None:
            return max(0.0, self._local_block_until - time.time())
        ttl_ms = self._redis.pttl(self._block_key)
        return ttl_ms / 1000.0 if ttl_ms and ttl_ms > 0 else 0.0

    def block(self, seconds: float) -> None:
        """Honour a venue's Retry-After for every process using this venue."""
        seconds = max(seconds, 0.001)
        log.warning("venue_rate_limited", extra={"venue": self.venue, "retry_after_s": seconds})
        if self._redis is None:
            self._local_block_until = max(self._local_block_until, time.time() + seconds)
            return
        self._redis.set(self._block_key, "1", px=int(seconds * 1000))

    def _wait_needed(self, cost: int, per_key: bool = True) -> float:
        """0 if the cost was taken from every budget, else seconds until the tightest one frees up."""
        blocked = self.blocked_for()
        if blocked > 0:
            return blocked
        checks = self._checks(cost, per_key)
        for item, ids, item_cost in checks:
            if item_cost > item.amount:
                raise RateLimited(f"a request of cost {item_cost} can never fit the limit {item}",
                                  venue=self.venue)
            if not self._limiter.test(item, *ids, cost=item_cost):
                stats = self._limiter.get_window_stats(item, *ids)
                return max(stats.reset_time - time.time(), 0.01)
        # test-then-hit can race with another process; a lost race only means one more wait round.
        for item, ids, item_cost in checks:
            if not self._limiter.hit(item, *ids, cost=item_cost):
                return 0.01
        return 0.0

    def acquire(self, cost: int = 1, *, per_key: bool = True) -> float:
        """Take `cost` (the request's weight) from the venue budgets and, when `per_key`, one request
        from the key budgets, waiting up to max_wait_s. Returns the time waited."""
        waited = 0.0
        while True:
            wait = self._wait_needed(cost, per_key)
            if wait == 0.0:
                return waited
            if waited + wait > self.max_wait_s:
                raise RateLimited(f"request budget spent; would wait {waited + wait:.1f}s "
                                  f"(max {self.max_wait_s:.1f}s)", venue=self.venue, retry_after=wait)
            self._sleep(wait)
            waited += wait

    def __repr__(self) -> str:
        return f"RateLimiter(venue={self.venue!r}, key={self._key_id!r})"
