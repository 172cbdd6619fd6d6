"""Requests with an unknown token: counted per address in (real) Redis, a bounded sample, a per-minute limit."""

from __future__ import annotations

import json

import redis

from core.infra.bus import STRANGER_COUNTS, STRANGER_SAMPLE, stranger_rate_key
from core.webhooks.strangers import MAX_ADDRESSES, SAMPLE_SIZE, Stranger, address_bucket, note_stranger

NOW = 1_795_255_200.0  # on a minute boundary


def test_each_address_has_its_own_budget_per_minute(redis_client):
    guesser, other = Stranger("203.0.113.9", b"{}", 2), Stranger("198.51.100.7", b"{}", 2)
    assert [note_stranger(redis_client, guesser, 3, NOW + i) for i in range(5)] == [True] * 3 + [False] * 2
    assert note_stranger(redis_client, other, 3, NOW + 5)
    assert note_stranger(redis_client, guesser, 3, NOW + 60), "a new minute, a new budget"
    assert redis_client.zscore(STRANGER_COUNTS, "203.0.113.9") == 6
    assert 0 < redis_client.ttl(stranger_rate_key("203.0.113.9", int(NOW // 60))) <= 120


def test_the_sample_and_the_address_table_stay_bounded(redis_client):
    for i in range(SAMPLE_SIZE + 50):
        note_stranger(redis_client, Stranger(f"10.0.{i // 250}.{i % 250}", b"x" * 10_000, 10_000, "curl"), 10, NOW)
    sample = [json.loads(raw) for raw in redis_client.lrange(STRANGER_SAMPLE, 0, -1)]
    assert len(sample) == SAMPLE_SIZE
    assert sample[0]["address"] == f"10.0.0.{SAMPLE_SIZE + 49}" and len(sample[0]["body"]) == 200
    assert sample[0]["body_size"] == 10_000 and sample[0]["user_agent"] == "curl"
    pipe = redis_client.pipeline()
    for i in range(MAX_ADDRESSES + 10):
        pipe.zadd(STRANGER_COUNTS, {f"192.0.2.{i}": 5})
    pipe.execute()
    note_stranger(redis_client, Stranger("192.0.2.250", b"", 0), 10, NOW)
    assert redis_client.zcard(STRANGER_COUNTS) == MAX_ADDRESSES
    assert redis_client.zscore(STRANGER_COUNTS, "192.0.2.250") == 6, "the busiest are the ones kept"


def test_an_ipv6_sender_is_limited_by_its_whole_64_range():
    assert address_bucket("2001:db8:1:2:aaaa::1") == address_bucket("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert address_bucket("::ffff:203.0.113.9") == "203.0.113.9"
    assert address_bucket("not an address") == address_bucket(None) == "unknown"


def test_with_redis_unreachable_a_stranger_costs_nothing_and_is_not_refused(redis_server):
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    assert note_stranger(down, Stranger("203.0.113.9", b"{}", 2), 1, NOW) is True
