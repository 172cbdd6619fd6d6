"""Nonces shared through a real Redis: strictly increasing across processes, never behind the clock."""

from __future__ import annotations

import multiprocessing
import time

import redis

from core.exchanges.nonce import NonceSource


def _draw(url: str, count: int, queue: multiprocessing.Queue) -> None:
    source = NonceSource(redis.Redis.from_url(url), venue="kraken", api_key="shared-key")
    queue.put([source.next() for _ in range(count)])


def test_concurrent_processes_never_get_the_same_nonce(redis_server, redis_client):
    queue: multiprocessing.Queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_draw, args=(redis_server, 200, queue)) for _ in range(3)]
    for w in workers:
        w.start()
    drawn = [queue.get(timeout=30) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    everything = [n for batch in drawn for n in batch]
    assert len(set(everything)) == 600
    assert all(batch == sorted(batch) and len(set(batch)) == len(batch) for batch in drawn)


def test_counter_is_lifted_to_the_clock_after_a_reset(redis_client):
    source = NonceSource(redis_client, venue="kraken", api_key="k")
    first = source.next()
    assert abs(first - time.time_ns() // 1000) < 5_000_000
    redis_client.flushdb()  # e.g. Redis lost its data: the sequence must still move forward
    assert source.next() > first


def test_keys_are_separate_and_do_not_contain_the_api_key(redis_client):
    a = NonceSource(redis_client, venue="kraken", api_key="key-a", clock_us=lambda: 10)
    b = NonceSource(redis_client, venue="kraken", api_key="key-b", clock_us=lambda: 10)
    assert [a.next(), a.next(), b.next()] == [10, 11, 10]
    assert not any(b"key-a" in k for k in redis_client.keys("*"))
    assert "key-a" not in repr(a)


def test_without_redis_a_single_process_still_increases():
    source = NonceSource(None, venue="kraken", api_key="k", clock_us=lambda: 5)
    assert [source.next() for _ in range(3)] == [5, 6, 7]
