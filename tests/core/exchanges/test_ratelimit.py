"""Request budgets shared through a real Redis by independent limiter instances (as separate
processes would hold), blocking waits, and venue-wide Retry-After blocks."""

from __future__ import annotations

import time

import pytest

from core.exchanges.errors import RateLimited
from core.exchanges.ratelimit import RateLimiter


def test_budget_is_shared_between_instances_and_waits_when_spent(redis_client):
    one = RateLimiter(redis_client, venue="binance", api_key="k", key_limits=("3/second",))
    other = RateLimiter(redis_client, venue="binance", api_key="k", key_limits=("3/second",))
    assert [one.acquire(), other.acquire(), one.acquire()] == [0.0, 0.0, 0.0]
    started = time.monotonic()
    waited = other.acquire()
    assert waited > 0 and time.monotonic() - started >= 0.5


def test_keys_have_separate_budgets_and_venue_budget_counts_weight(redis_client):
    a = RateLimiter(redis_client, venue="binance", api_key="a", venue_limits=("30/minute",), key_limits=("1/minute",),
                    max_wait_s=0)
    b = RateLimiter(redis_client, venue="binance", api_key="b", venue_limits=("30/minute",), key_limits=("1/minute",),
                    max_wait_s=0)
    a.acquire(cost=20)
    with pytest.raises(RateLimited, match="would wait"):
        a.acquire()  # key a spent its one request
    with pytest.raises(RateLimited):
        b.acquire(cost=20)  # venue weight 20 + 20 > 30
    assert b.acquire(cost=5) == 0.0


def test_a_cost_that_can_never_fit_is_refused_at_once(redis_client):
    limiter = RateLimiter(redis_client, venue="v", venue_limits=("10/second",))
    with pytest.raises(RateLimited, match="can never fit"):
        limiter.acquire(cost=11)


def test_retry_after_blocks_every_instance_of_the_venue(redis_client):
    first = RateLimiter(redis_client, venue="kraken", api_key="a")
    second = RateLimiter(redis_client, venue="kraken", api_key="b", max_wait_s=0.1)
    first.block(5)
    assert 4 < second.blocked_for() <= 5
    with pytest.raises(RateLimited) as caught:
        second.acquire()
    assert caught.value.retry_after > 4


def test_without_redis_the_limit_holds_in_process():
    slept: list[float] = []
    limiter = RateLimiter(None, venue="v", key_limits=("1/minute",), max_wait_s=1, sleep=slept.append)
    limiter.acquire()
    with pytest.raises(RateLimited):
        limiter.acquire()


def test_order_budget_is_not_spent_by_queries(redis_client):
    """Binance's per-account ORDERS limit counts new orders only: queries and cancels must not eat it."""
    limiter = RateLimiter(redis_client, venue="binance", api_key="q", key_limits=("2/minute",), max_wait_s=0)
    for _ in range(10):
        assert limiter.acquire(per_key=False) == 0.0
    assert [limiter.acquire(), limiter.acquire()] == [0.0, 0.0]
    with pytest.raises(RateLimited, match="would wait"):
        limiter.acquire()
    assert limiter.acquire(per_key=False) == 0.0
