"""Request budgets shared through a real Redis by independent limiter instances (as separate
processes would hold), blocking waits, and venue-wide Retry-After blocks."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.exchanges.errors import OrderWindowPassed, RateLimited
from core.exchanges.ratelimit import (
    Priority,
    RateLimiter,
    RequestClass,
    background,
    ceiling,
    current_priority,
    priority,
)
from core.infra.bus import ratelimit_queue


def test_budget_is_shared_between_instances_and_waits_when_spent(redis_client):
    one = RateLimiter(redis_client, venue="binance", api_key="k", key_limits=("3/second",))
    other = RateLimiter(redis_client, venue="binance", api_key="k", key_limits=("3/second",))
    assert [one.acquire(), other.acquire(), one.acquire()] == [0.0, 0.0, 0.0]
    started = time.monotonic()
    waited = other.acquire()
    assert waited > 0 and time.monotonic() - started >= 0.5


def test_keys_have_separate_budgets_and_venue_budget_counts_weight(redis_client):
    a = RateLimiter(
        redis_client, venue="binance", api_key="a", venue_limits=("30/minute",), key_limits=("1/minute",), max_wait_s=0
    )
    b = RateLimiter(
        redis_client, venue="binance", api_key="b", venue_limits=("30/minute",), key_limits=("1/minute",), max_wait_s=0
    )
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


# ---- priorities: orders first, background yields, orders wait their turn ------------------------


def _limiter(redis_client, venue: str, **options) -> RateLimiter:
    return RateLimiter(redis_client, venue=venue, venue_limits=("10/minute",), max_wait_s=0, **options)


def test_background_leaves_a_reserve_that_only_orders_may_spend(redis_client):
    limiter = _limiter(redis_client, "reserve")
    with background():
        assert [limiter.acquire() for _ in range(6)] == [0.0] * 6  # 60% of the budget
        with pytest.raises(RateLimited, match="would wait"):
            limiter.acquire()
    assert [limiter.acquire() for _ in range(3)] == [0.0] * 3  # an order's queries: up to 90%
    with pytest.raises(RateLimited):
        limiter.acquire()
    with priority(RequestClass.ORDER):
        assert limiter.acquire() == 0.0  # the last unit is the orders'


def test_the_class_follows_the_caller_and_nested_blocks_restore_it(redis_client):
    assert current_priority().request_class == RequestClass.ORDER_QUERY
    with background():
        with priority(RequestClass.ORDER, deadline=123.0):
            assert current_priority() == Priority(RequestClass.ORDER, 123.0)
        assert current_priority().request_class == RequestClass.BACKGROUND
    assert current_priority().request_class == RequestClass.ORDER_QUERY


def _wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_background_is_deferred_while_an_order_waits_its_turn(redis_client):
    order_limiter = RateLimiter(redis_client, venue="defer", venue_limits=("2/second",), max_wait_s=0)
    background_limiter = RateLimiter(redis_client, venue="defer", venue_limits=("2/second",), max_wait_s=1.5)
    with priority(RequestClass.ORDER):
        order_limiter.acquire(cost=2)
    waited: list[float] = []

    def order() -> None:
        with priority(RequestClass.ORDER, deadline=time.time() + 5):
            waited.append(order_limiter.acquire(cost=2))

    thread = threading.Thread(target=order)
    thread.start()
    _wait_for(lambda: order_limiter.orders_waiting() == 1)
    with background(), pytest.raises(RateLimited):
        background_limiter.acquire()  # the budget frees within 1 s, but it is the waiting order's
    thread.join()
    assert waited and 0 < waited[0] < 1.5 and order_limiter.orders_waiting() == 0


def test_waiting_orders_are_served_in_arrival_order_across_limiters(redis_client):
    limiters = [RateLimiter(redis_client, venue="fifo", venue_limits=("1/second",), max_wait_s=0) for _ in range(4)]
    with priority(RequestClass.ORDER):
        limiters[0].acquire()
    served: list[int] = []

    def order(number: int) -> None:
        with priority(RequestClass.ORDER, deadline=time.time() + 10):
            limiters[number].acquire()
        served.append(number)

    threads = []
    for number in range(4):
        threads.append(threading.Thread(target=order, args=(number,)))
        threads[-1].start()
        _wait_for(lambda n=number: limiters[0].orders_waiting() == n + 1)  # arrived, in this order
    for thread in threads:
        thread.join()
    assert served == [0, 1, 2, 3]


def test_an_order_whose_deadline_would_pass_gives_up_its_turn_and_says_why(redis_client):
    limiter = RateLimiter(redis_client, venue="late", venue_limits=("1/minute",), max_wait_s=0)
    with priority(RequestClass.ORDER):
        limiter.acquire()
        with priority(RequestClass.ORDER, deadline=time.time() + 2), pytest.raises(OrderWindowPassed) as caught:
            limiter.acquire()
    assert "useful life" in str(caught.value) and caught.value.retry_after > 50
    assert limiter.orders_waiting() == 0  # nobody behind waits for its ticket


def test_a_ticket_whose_waiter_died_stops_holding_the_queue(redis_client):
    limiter = RateLimiter(redis_client, venue="dead", venue_limits=("5/second",), max_wait_s=0)
    waiting, alive, _ = ratelimit_queue("dead")
    redis_client.zadd(waiting, {"killed-worker": 1})
    redis_client.zadd(alive, {"killed-worker": int(time.time() * 1000) - 1})
    with priority(RequestClass.ORDER):
        assert limiter.acquire() == 0.0
    assert limiter.orders_waiting() == 0


def test_without_redis_the_classes_keep_their_shares():
    limiter = RateLimiter(None, venue="v", venue_limits=("10/minute",), max_wait_s=0)
    with background():
        for _ in range(6):
            limiter.acquire()
        with pytest.raises(RateLimited):
            limiter.acquire()
    with priority(RequestClass.ORDER):
        assert [limiter.acquire() for _ in range(4)] == [0.0] * 4


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    limit=st.integers(min_value=1, max_value=600),
    calls=st.lists(st.tuples(st.booleans(), st.integers(min_value=1, max_value=40)), max_size=60),
)
def test_orders_are_never_refused_while_background_saturates_the_budget(redis_client, limit, calls):
    """Whatever the background asks, in any interleaving, orders fit up to the reserve it must leave."""
    limiter = RateLimiter(
        redis_client, venue=f"prop-{uuid.uuid4().hex}", venue_limits=(f"{limit}/minute",), max_wait_s=0
    )
    reserve = limit - ceiling(limit, RequestClass.BACKGROUND)
    ordered = 0
    for is_order, cost in calls:
        cost = min(cost, limit)
        if is_order and ordered + cost <= reserve:
            with priority(RequestClass.ORDER):
                assert limiter.acquire(cost) == 0.0
            ordered += cost
        elif not is_order:
            with background(), contextlib.suppress(RateLimited):
                limiter.acquire(cost)
    if reserve > ordered:
        with priority(RequestClass.ORDER):
            assert limiter.acquire(reserve - ordered) == 0.0  # the whole reserve is still the orders'


def test_an_order_held_back_by_its_own_account_budget_does_not_hold_up_other_accounts(redis_client):
    busy, other = (
        RateLimiter(
            redis_client,
            venue="accounts",
            api_key=name,
            venue_limits=("100/minute",),
            key_limits=("1/second",),
            max_wait_s=0,
        )
        for name in ("busy", "other")
    )
    with priority(RequestClass.ORDER):
        busy.acquire()  # the busy account's one order this second
    waited: list[float] = []

    def second_order_of_the_busy_account() -> None:
        with priority(RequestClass.ORDER, deadline=time.time() + 5):
            waited.append(busy.acquire())

    thread = threading.Thread(target=second_order_of_the_busy_account)
    thread.start()
    _wait_for(lambda: busy.orders_waiting() == 1)
    with priority(RequestClass.ORDER):
        assert other.acquire() == 0.0  # the venue's budget is free: not behind the busy account
    with background():
        assert other.acquire(per_key=False) == 0.0  # nor is background work
    assert busy.orders_waiting() == 1
    thread.join()
    assert waited and waited[0] > 0.5 and busy.orders_waiting() == 0
