"""Requests to a webhook URL whose token matches no webhook: token guessing, or an alert still pointing at
a rotated URL. Nothing of them goes to Postgres: each sender address is counted and limited in Redis,
and a small sample of the latest ones is kept for the operator.

Redis names (built in core/infra/bus.py):
    stranger_rate_key(bucket, minute)  counter of one address's requests in one minute (expires)
    STRANGER_COUNTS                    sorted set: address -> requests, only the busiest MAX_ADDRESSES kept
    STRANGER_SAMPLE                    list: the latest SAMPLE_SIZE requests (JSON), newest first
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from dataclasses import dataclass

import redis

from core.infra.bus import STRANGER_COUNTS, STRANGER_SAMPLE, stranger_rate_key

log = logging.getLogger(__name__)

MAX_ADDRESSES = 1000
SAMPLE_SIZE = 100
SAMPLE_BODY_CHARS = 200
RATE_KEY_TTL_S = 120


@dataclass(frozen=True)
class Stranger:
    """What is kept of one request with an unknown token (never the token: it may be a rotated real one)."""

    address: str | None
    body: bytes
    body_size: int
    user_agent: str = ""


def address_bucket(address: str | None) -> str:
    """The unit a limit applies to: an IPv4 address, or an IPv6 /64 (one subscriber's whole range)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


def note_stranger(client: redis.Redis, stranger: Stranger, limit_per_minute: int, now: float | None = None) -> bool:
    """Count the request; False when its address is over `limit_per_minute` (answer 429).

    With Redis unreachable nothing is counted and the request is answered as unknown: it costs nothing."""
    now = time.time() if now is None else now
    bucket = address_bucket(stranger.address)
    rate_key = stranger_rate_key(bucket, int(now // 60))
    try:
        pipe = client.pipeline(transaction=False)
        pipe.incr(rate_key)
        pipe.expire(rate_key, RATE_KEY_TTL_S)
        pipe.zincrby(STRANGER_COUNTS, 1, bucket)
        pipe.zremrangebyrank(STRANGER_COUNTS, 0, -MAX_ADDRESSES - 1)
        count = pipe.execute()[0]
        if count > limit_per_minute:
            return False
        entry = {
            "at": round(now, 3),
            "address": stranger.address,
            "body_size": stranger.body_size,
            "user_agent": stranger.user_agent[:200],
            "body": stranger.body[:SAMPLE_BODY_CHARS].decode("utf-8", "replace"),
        }
        sample = client.pipeline(transaction=False)
        sample.lpush(STRANGER_SAMPLE, json.dumps(entry))
        sample.ltrim(STRANGER_SAMPLE, 0, SAMPLE_SIZE - 1)
        sample.execute()
    except redis.RedisError as exc:
        log.warning(
            "webhook_unknown_token_not_counted", extra={"source_ip": stranger.address, "error": type(exc).__name__}
        )
    return True
