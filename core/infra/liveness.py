"""Process liveness: every long-lived process reports itself alive in Redis every few seconds."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any, cast

import redis

from core.infra.bus import EXPECTED_PROCESSES, LIVENESS, get_redis
from core.notifications import events as notifications

log = logging.getLogger(__name__)
INTERVAL_S = 3.0
STALE_AFTER_S = 15.0
FORGET_AFTER_S = 600.0  # a one-off process (a bench worker) that stopped long ago is no longer listed


def write_liveness(name: str, info: dict | None = None, client: redis.Redis | None = None) -> None:
    payload = {"ts": time.time(), "pid": os.getpid(), "host": socket.gethostname(), "info": info or {}}
    (client or get_redis()).hset(LIVENESS, name, json.dumps(payload))


def read_liveness(client: redis.Redis | None = None, now: float | None = None) -> dict[str, dict[str, Any]]:
    client = client or get_redis()
    now = now or time.time()
    # get_redis() decodes responses: names and values are text.
    raw = cast("dict[str, str]", client.hgetall(LIVENESS))
    expected = cast("set[str]", client.smembers(EXPECTED_PROCESSES))
    result: dict[str, dict[str, Any]] = {}
    for name in sorted(set(raw) | expected):
        beat = json.loads(raw[name]) if name in raw else None
        age = round(now - beat["ts"], 1) if beat else None
        if name not in expected and age is not None and age > FORGET_AFTER_S:
            client.hdel(LIVENESS, name)
            continue
        result[name] = {
            "ok": age is not None and age < STALE_AFTER_S,
            "age_s": age,
            "expected": name in expected,
            "info": beat["info"] if beat else {},
        }
    return result


class LivenessThread(threading.Thread):
    """Background writer; survives Redis outages (logs once per outage, resumes when Redis is back)."""

    def __init__(self, name: str, info_fn=None, interval: float = INTERVAL_S):
        super().__init__(name=f"liveness-{name}", daemon=True)
        self.process_name = name
        self.info_fn = info_fn or dict
        self.interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        failing = False
        while not self._stop_event.is_set():
            try:
                write_liveness(self.process_name, self.info_fn())
                if failing:
                    log.info("redis_reachable_again", extra={"liveness_of": self.process_name})
                failing = False
            except redis.RedisError as exc:
                if not failing:
                    log.warning("redis_unreachable", extra={"liveness_of": self.process_name, "error": str(exc)})
                failing = True
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()


def start_liveness(name: str, info_fn=None) -> LivenessThread:
    notifications.process_started(name, FORGET_AFTER_S)
    thread = LivenessThread(name, info_fn)
    thread.start()
    return thread
