"""Per-venue and per-key request budgets shared by all processes through Redis, with priorities.

Every adapter call acquires its cost first: against the venue-wide limits (IP weight budgets) and
against the per-key limits (order/account budgets). A 429 from the venue blocks the whole venue (all
processes) until its Retry-After has passed.

Each budget is a moving window: a list of the times of its last `limit` units, newest first. A request
of cost c fits under a ceiling n when the unit at index n - c is older than the window (or absent).

Requests come in three classes (RequestClass), set by the caller with `priority(...)` (a context
variable, so every adapter call made inside the block is tagged, whatever adapter method it is):
- ORDER (place, cancel) may use the whole budget. When it does not fit, the order takes a ticket in
  the venue's queue and waits its turn in arrival order, across processes, until its deadline (the
  signal's useful life) instead of `max_wait_s`; past it, OrderWindowPassed. An order held back only
  by its own account's budget (Binance: 100 orders / 10 s) keeps its place but lets the orders of
  other accounts behind it go.
- ORDER_QUERY (what an order needs: its status, the symbol rules) leaves a small reserve to orders.
- BACKGROUND (reconciliation, trade history, balances, backfills) may use at most its share (60%)
  of each budget, and not at all while an order waits for the venue's: it is deferred, never the order.
The block check, the queue and every budget are decided and taken in one Redis script: one round trip
per request, and no race between checking one budget and taking another.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import IntEnum

import redis as redis_lib
from limits import RateLimitItem, parse

from core.exchanges.errors import OrderWindowPassed, RateLimited
from core.exchanges.nonce import key_fingerprint
from core.infra.bus import (
    ratelimit_blocked,
    ratelimit_budget,
    ratelimit_held,
    ratelimit_queue,
    ratelimit_spent,
)

log = logging.getLogger(__name__)


class RequestClass(IntEnum):
    """Who is asking, most urgent first (the value is the order the classes yield in)."""

    ORDER = 0  # place and cancel: never refused by us while the venue would take it in time
    ORDER_QUERY = 1  # the queries an order needs (its status after a send, the symbol rules)
    BACKGROUND = 2  # reconciliation, trade history, market rules refresh, balances, backfills


# The share (percent) of every budget each class may fill; the rest is left to the classes above it.
# Rounded in favour of the class, so a tiny budget (Kraken: 1 public call per second) stays usable by all.
SHARES = {RequestClass.ORDER: 100, RequestClass.ORDER_QUERY: 90, RequestClass.BACKGROUND: 60}
# A waiting order's ticket is dropped when its waiter has not polled for this long (a killed process).
TICKET_GRACE_MS = 2000
# How often an order behind another one looks again, and background work while any order waits.
POLL_MS = 20
BACKGROUND_POLL_MS = 100


@dataclass(frozen=True)
class Priority:
    request_class: RequestClass
    deadline: float | None = None  # epoch seconds: how long an ORDER may wait for the budget


# Untagged calls (a page, a bot sizing its order) count as the queries an order needs.
UNTAGGED = Priority(RequestClass.ORDER_QUERY)
_PRIORITY: ContextVar[Priority | None] = ContextVar("aristobot_request_priority", default=None)


@contextmanager
def priority(request_class: RequestClass, *, deadline: float | None = None) -> Iterator[None]:
    """Tag every venue request made inside the block (in this thread or task) with `request_class`."""
    token = _PRIORITY.set(Priority(request_class, deadline))
    try:
        yield
    finally:
        _PRIORITY.reset(token)


@contextmanager
def background() -> Iterator[None]:
    """`with background():` (or `@background()`) for work no trader waits on."""
    with priority(RequestClass.BACKGROUND):
        yield


def current_priority() -> Priority:
    return _PRIORITY.get() or UNTAGGED


def ceiling(limit: int, request_class: RequestClass) -> int:
    """How many of a budget's `limit` units `request_class` may have in use at once."""
    return limit - limit * (100 - SHARES[request_class]) // 100


# KEYS: the venue's block key, its order queue (zset: ticket -> arrival number), the queue's liveness
# (zset: ticket -> expiry ms), the arrival counter, the weight spent per class (hash), the orders held
# back by their own account's budget (zset: ticket -> until ms), then one list per budget, the venue's
# first. ARGV: now (ms), ticket ('' unless an order), class, the request's weight, how many budgets are
# the venue's, then per budget: limit, ceiling, window (ms), cost.
# Returns 0 once every budget was taken, else the milliseconds to wait.
_TAKE_SCRIPT = (
    """
local now, ticket, class, venue_budgets = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, dead in ipairs(gone) do
  redis.call('ZREM', KEYS[2], dead)
  redis.call('ZREM', KEYS[3], dead)
  redis.call('ZREM', KEYS[6], dead)
end
-- The first waiting order the venue's budget could serve: one held back only by its own account's
-- budget does not hold up the orders of other accounts.
local head = nil
for _, waiting in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local held = redis.call('ZSCORE', KEYS[6], waiting)
  if waiting == ticket or not held or tonumber(held) <= now then
    head = waiting
    break
  end
end
if class == 2 and head then return BACKGROUND_POLL_MS end
local venue_wait, key_wait = math.max(redis.call('PTTL', KEYS[1]), 0), 0
for i = 7, #KEYS do
  local at = 6 + (i - 7) * 4
  local ceiling, window, cost = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  local freed_at = redis.call('LINDEX', KEYS[i], ceiling - cost)
  if freed_at and now - tonumber(freed_at) < window then
    local budget_wait = tonumber(freed_at) + window - now
    if i - 7 < venue_budgets then venue_wait = math.max(venue_wait, budget_wait)
    else key_wait = math.max(key_wait, budget_wait) end
  end
end
local wait = math.max(venue_wait, key_wait)
if class == 0 and ((head and head ~= ticket) or wait > 0) then
  if not redis.call('ZSCORE', KEYS[2], ticket) then
    redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), ticket)
  end
  if key_wait > 0 then redis.call('ZADD', KEYS[6], now + key_wait, ticket) else redis.call('ZREM', KEYS[6], ticket) end
  wait = math.max(wait, POLL_MS)
  redis.call('ZADD', KEYS[3], now + wait + GRACE_MS, ticket)
  return wait
end
if wait > 0 then return wait end
if class == 0 then
  redis.call('ZREM', KEYS[2], ticket)
  redis.call('ZREM', KEYS[3], ticket)
  redis.call('ZREM', KEYS[6], ticket)
end
redis.call('HINCRBY', KEYS[5], class, tonumber(ARGV[4]))
for i = 7, #KEYS do
  local at = 6 + (i - 7) * 4
  local limit, window, cost = tonumber(ARGV[at]), tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  for _ = 1, cost do redis.call('LPUSH', KEYS[i], now) end
  redis.call('LTRIM', KEYS[i], 0, limit - 1)
  redis.call('PEXPIRE', KEYS[i], window)
end
return 0
""".replace("BACKGROUND_POLL_MS", str(BACKGROUND_POLL_MS))
    .replace("POLL_MS", str(POLL_MS))
    .replace("GRACE_MS", str(TICKET_GRACE_MS))
)

Budget = tuple[str, int, int, int, int]  # (key, limit, ceiling, window ms, cost)


def weight_spent(redis: redis_lib.Redis, venue: str) -> dict[RequestClass, int]:
    """The venue weight taken by each class since Redis started (every process): what benches and
    operators difference over a period to see who spends a venue's budget."""
    raw = redis.hgetall(ratelimit_spent(venue))
    spent = {RequestClass(int(name)): int(value) for name, value in raw.items()}
    return {request_class: spent.get(request_class, 0) for request_class in RequestClass}


class _LocalWindows:
    """The same windows in process memory, for a process without Redis (a single CLI call): one
    caller at a time, so there is no queue to keep, only the classes' ceilings."""

    def __init__(self) -> None:
        self.block_until_ms = 0
        self._units: dict[str, deque[int]] = {}

    def take(self, now_ms: int, budgets: list[Budget]) -> int:
        if self.block_until_ms > now_ms:
            return self.block_until_ms - now_ms
        for key, _, top, window_ms, cost in budgets:
            units = self._units.get(key, ())
            if len(units) > top - cost and now_ms - units[top - cost] < window_ms:
                return max(1, units[top - cost] + window_ms - now_ms)
        for key, limit, _, _, cost in budgets:
            units = self._units.setdefault(key, deque())
            units.extendleft([now_ms] * cost)
            while len(units) > limit:
                units.pop()
        return 0


class RateLimiter:
    def __init__(
        self,
        redis: redis_lib.Redis | None,
        *,
        venue: str,
        api_key: str = "",
        venue_limits: Sequence[str] = (),
        key_limits: Sequence[str] = (),
        max_wait_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
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
        self._block_key = ratelimit_blocked(venue)
        self._queue_keys = ratelimit_queue(venue)
        self._spent_key = ratelimit_spent(venue)
        self._held_key = ratelimit_held(venue)

    def _budgets(self, cost: int, per_key: bool, request_class: RequestClass) -> list[Budget]:
        # Venue budgets are weights (a heavy endpoint costs more); key budgets count requests.
        key_items = self._key_items if per_key else []
        checks = [(item, self.venue, cost) for item in self._venue_items] + [
            (item, f"{self.venue}:{self._key_id}", 1) for item in key_items
        ]
        budgets = []
        for item, owner, item_cost in checks:
            top = ceiling(item.amount, request_class)
            if item_cost > top:
                share = "" if top == item.amount else f" ({request_class.name.lower()} share: {top})"
                raise RateLimited(
                    f"a request of cost {item_cost} can never fit the limit {item}{share}", venue=self.venue
                )
            window_ms = item.get_expiry() * 1000
            budgets.append((ratelimit_budget(owner, item.amount, window_ms), item.amount, top, window_ms, item_cost))
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

    def orders_waiting(self) -> int:
        """Orders of this venue waiting for the budget right now (all processes)."""
        return int(self._redis.zcard(self._queue_keys[0])) if self._redis is not None else 0

    def _wait_needed(self, cost: int, per_key: bool, request_class: RequestClass, ticket: str) -> float:
        """0 if the cost was taken from every budget, else seconds until it is worth asking again."""
        budgets = self._budgets(cost, per_key, request_class)
        now_ms = int(time.time() * 1000)
        if self._take is None:
            return self._local.take(now_ms, budgets) / 1000
        args: list[int | str] = [
            now_ms,
            ticket,
            int(request_class),
            cost,
            len(self._venue_items),
            *(value for _, limit, top, window_ms, item_cost in budgets for value in (limit, top, window_ms, item_cost)),
        ]
        keys = [self._block_key, *self._queue_keys, self._spent_key, self._held_key] + [key for key, *_ in budgets]
        return int(self._take(keys=keys, args=args)) / 1000

    def _leave_queue(self, ticket: str) -> None:
        if self._redis is not None:
            pipe = self._redis.pipeline(transaction=False)
            for key in (*self._queue_keys[:2], self._held_key):
                pipe.zrem(key, ticket)
            pipe.execute()

    def acquire(self, cost: int = 1, *, per_key: bool = True) -> float:
        """Take `cost` (the request's weight) from the venue budgets and, when `per_key`, one request
        from the key budgets, as the caller's class (see `priority`). Waits up to max_wait_s, or for an
        order with a deadline, in its turn until the deadline. Returns the time waited."""
        tag = current_priority()
        is_order = tag.request_class == RequestClass.ORDER
        ticket = uuid.uuid4().hex if is_order else ""
        allowed = tag.deadline - time.time() if is_order and tag.deadline is not None else self.max_wait_s
        waited = 0.0
        try:
            while True:
                wait = self._wait_needed(cost, per_key, tag.request_class, ticket)
                if wait == 0.0:
                    return waited
                if waited + wait > allowed:
                    raise self._refusal(tag, wait, waited, allowed)
                self._sleep(wait)
                waited += wait
        except BaseException:
            if is_order:
                self._leave_queue(ticket)  # the orders behind must not wait for a ticket nobody holds
            raise

    def _refusal(self, tag: Priority, wait: float, waited: float, allowed: float) -> RateLimited:
        if tag.request_class == RequestClass.ORDER and tag.deadline is not None:
            return OrderWindowPassed(
                f"request budget spent: waited {waited:.1f}s in turn, the next place frees in {wait:.1f}s, "
                f"after the signal's useful life ends (in {max(allowed - waited, 0):.1f}s)",
                venue=self.venue,
                retry_after=wait,
            )
        return RateLimited(
            f"request budget spent; would wait {waited + wait:.1f}s (max {max(allowed, 0):.1f}s)",
            venue=self.venue,
            retry_after=wait,
        )

    def __repr__(self) -> str:
        return f"RateLimiter(venue={self.venue!r}, key={self._key_id!r})"
