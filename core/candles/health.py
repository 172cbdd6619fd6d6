"""Stale-feed detection for /healthz, read from the feeds process liveness report (no extra state)."""

from __future__ import annotations

import time

import redis

from core.infra.liveness import read_liveness

FEEDS_PROCESS = "feeds"
# The venue sends a kline update every ~2 s per symbol; this long without any is a dead feed.
STALE_FEED_S = 30.0


def feed_status(client: redis.Redis | None = None, now: float | None = None) -> dict:
    """The feeds liveness info plus, per symbol, the age of its last message and a stale flag."""
    now = now or time.time()
    beat = read_liveness(client, now).get(FEEDS_PROCESS)
    if beat is None:
        return {"running": False, "connected": False, "symbols": {}, "stale": []}
    info = beat.get("info") or {}
    symbols: dict[str, dict] = {}
    stale = []
    for source in info.get("sources") or [info]:  # every heartbeat source; the first one's symbols at the top
        threshold = source.get("stale_after_s") or STALE_FEED_S
        for symbol, status in sorted((source.get("symbols") or {}).items()):
            last = status.get("last_message_ts") or status.get("since_ts")
            age = round(now - last, 1) if last else None
            is_stale = age is None or age > threshold
            if source.get("venue") == info.get("venue"):
                symbols[symbol] = {**status, "age_s": age, "stale": is_stale}
            if is_stale:
                stale.append({"venue": source.get("venue"), "symbol": symbol, "age_s": age})
    return {
        **info,
        "running": beat["ok"],
        "connected": bool(info.get("connected")) and beat["ok"],
        "symbols": symbols,
        "stale": stale,
    }


def stale_feeds(client: redis.Redis | None = None, now: float | None = None) -> list[dict]:
    """Feeds with no message for STALE_FEED_S: [{"venue", "symbol", "age_s"}]. Empty when feeds is not running
    (the process liveness already reports that)."""
    status = feed_status(client, now)
    return status["stale"] if status["running"] else []
