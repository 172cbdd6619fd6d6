"""Events for the admins: a process restarted, a feed gone stale (told from a thread, off the caller's loop)."""

from __future__ import annotations

import json
import secrets
import time

from core.infra.bus import LIVENESS
from core.notifications import events
from tests.notification_support import notifications_of


def _told(user_id: int, source: str, count: int, timeout: float = 10.0) -> list:
    deadline = time.monotonic() + timeout
    while len(found := notifications_of(user_id, source)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_a_process_that_starts_soon_after_its_last_heartbeat_was_restarted(make_user, redis_client):
    admin, _ = make_user(is_admin=True)
    name = f"worker-{secrets.token_hex(3)}"
    events.process_started(name)  # never seen before: a first start, not a restart
    redis_client.hset(LIVENESS, name, json.dumps({"ts": time.time() - 20, "pid": 1, "host": "h", "info": {}}))
    events.process_started(name)
    told = [n for n in _told(admin.id, "system", 1) if name in n.title]
    assert [n.title for n in told] == [f"Process restarted: {name}"]
    assert "Previous pid 1 on h" in told[0].body


def test_symbols_going_stale_tell_the_admins_once(make_user):
    admin, _ = make_user(is_admin=True)
    venue = f"v{secrets.token_hex(3)}"
    events.feed_stale(venue, {"ETHUSDT", "BTCUSDT"})
    events.feed_stale(venue, set())  # nothing newly stale: nothing said
    events.feed_stale(venue, {"BTCUSDT", "ETHUSDT"})  # the same condition again within the window
    time.sleep(1)
    told = [n for n in _told(admin.id, "feed", 1) if venue in n.title]
    assert [n.title for n in told] == [f"Market data stale on {venue}: BTCUSDT, ETHUSDT"]
