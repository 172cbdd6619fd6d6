"""Per-venue and per-key request budgets shared by all processes through Redis.

Every adapter call acquires its cost first: against the venue-wide limits (IP weight budgets) and
against the per-key limits (order/account budgets). When the budget is spent the caller waits, up to
`max_wait_s`, then gets RateLimited instead of hammering the venue. A 429 from the venue blocks the
whole venue (all processes) until its Retry-After has passed.

Each budget is a moving window: a list of the times of its last `limit` units, newest first. A request
of cost c fits when the unit at index limit - c is older than the window (or absent). The block check
and every budget are decided and taken in one Redis script: one round trip per request, and no race
between checking one budget and taking another.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

import redis as redis_lib
from limits import RateLimitItem, parse

from core.exchanges.errors import RateLimited
from core.exchanges.nonce import key_fingerprint

log = logging.getLogger(__name__)

PREFIX = "aristobot:ratelimit"

# KEYS: the venue's block key, then one list per budget; ARGV: now (ms), then per budget limit,
# window (ms), cost. Returns 0 once every budget was taken, else the milliseconds to wait.
_TAKE_SCRIPT = """
local blocked = redis.call('PTTL', KEYS[1])
if blocked > 0 then return blocked end
local now = tonumber(ARGV[1])
for i = 2, #KEYS do
  local at = 2 + (i - 2) * 3
  local limit, window, cost = tonumber(ARGV[at]), tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local freed_at = redis.call('LINDEX', KEYS[i], limit - cost)
  if freed_at and now - tonumber(freed_at) < window then
    return math.max(1, tonumber(freed_at) + window - now)
  end
end
for i = 2, #KEYS do
  local at = 2 + (i - 2) * 3
  local limit, window, cost = tonumber(ARGV[at]), tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  for _ = 1, cost do redis.call('LPUSH', KEYS[i], now) end
  redis.call('LTRIM', KEYS[i], 0, limit - 1)
  redis.call('PEXPIRE', KEYS[i], window)
end
return 0
"""

Budget = tuple[str, int, int, int]  # (key, limit, window ms, cost)


class _LocalWindows:
    """The same windows in process memory, for a process without Redis (a single CLI call)."""

    def __init__(self) -> None:
        self.block_until_ms = 0
        self._units: dict[str, deque[int]] = {}

    def take(self, now_ms: int, budgets: list[Budget]) -> int:
        if self.block_until_ms > now_ms:
            return self.block_until_ms - now_ms
        for key, limit, window_ms, cost in budgets:
            units = self._units.get(key, ())
            if len(units) > limit - cost and now_ms - units[limit - cost] < window_ms:
                return max(1, units[limit - cost] + window_ms - now_ms)
        for key, limit, _, cost in budgets:
            units = self._units.setdefault(key, deque())
            units.extendleft([now_ms] * cost)
            while len(units) > limit:
                units.pop()
        return 0


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
        self._take = redis.register_script(_TAKE_SCRIPT) if redis is not None else None
        self._local = _LocalWindows()
        self._block_key = f"{PREFIX}:blocked:{venue}"

    def _budgets(self, cost: int, per_key: bool) -> list[Budget]:
        # Venue budgets are weights (a heavy endpoint costs more); key budgets count requests.
        key_items = self._key_items if per_key else []
        checks = ([(item, self.venue, cost) for item in self._venue_items]
                  + [(item, f"{self.venue}:{self._key_id}", 1) for item in key_items])
        budgets = []
        for item, owner, item_cost in checks:
            if item_cost > item.amount:
                raise RateLimited(f"a request of cost {item_cost} can never fit the limit {item}",
                                  venue=self.venue)
            window_ms = item.get_expiry() * 1000
            budgets.append((f"{PREFIX}:{owner}:{item.amount}/{window_ms}", item.amount, window_ms, item_cost))
        return budgets

    def blocked_for(self) -> float:
        """Seconds left on a venue-wide block set by a 429/418."""
        if self._redis is None:
            return max(0.0, (self._local.block_until_ms - time.time() * 1000) / 1000)
        ttl_ms = self._redis.pttl(self._block_key)
        return ttl_ms / 1000.0 if ttl_ms and ttl_ms > 0 else 0.0

    def block(self, seconds: float) -> None:
        """Honour a venue's Retry-After for every process using this venue."""
        seconds = max(seconds, 0.001)
        log.warning("venue_rate_limited", extra={"venue": self.venue, "retry_after_s": seconds})
        if self._redis is None:
            self._local.block_until_ms = max(self._local.block_until_ms, int((time.time() + seconds) * 1000))
            return
        self._redis.set(self._block_key, "1", px=int(seconds * 1000))

    def _wait_needed(self, cost: int, per_key: bool = True) -> float:
        """0 if the cost was taken from every budget, else seconds until the tightest one frees up."""
        budgets = self._budgets(cost, per_key)
        now_ms = int(time.time() * 1000)
        if self._take is None:
            return self._local.take(now_ms, budgets) / 1000
        args = [now_ms] + [value for _, limit, window_ms, item_cost in budgets
                           for value in (limit, window_ms, item_cost)]
        return int(self._take(keys=[self._block_key] + [key for key, *_ in budgets], args=args)) / 1000

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
