"""System health: what /healthz and the admin System page report."""

from __future__ import annotations

import redis
from sqlalchemy.exc import SQLAlchemyError

from core.backups.status import backup_health
from core.candles.health import stale_feeds
from core.infra.bus import QUEUES, get_redis
from core.infra.config import get_settings
from core.infra.db import ping_database
from core.infra.liveness import read_liveness


def queue_depths(client: redis.Redis | None = None) -> dict[str, int]:
    client = client or get_redis()
    return {queue: client.llen(queue) for queue in QUEUES}


def system_health() -> dict:
    report: dict = {
        "postgres": {"ok": True},
        "redis": {"ok": True},
        "processes": {},
        "queues": {},
        "feeds": {"stale": []},
    }
    try:
        ping_database()
    except SQLAlchemyError as exc:
        report["postgres"] = {"ok": False, "error": str(getattr(exc, "orig", exc)).splitlines()[0][:200]}
    client: redis.Redis | None = None
    try:
        client = get_redis()
        client.ping()
        report["processes"] = read_liveness(client)
        report["queues"] = queue_depths(client)
        report["feeds"] = {"stale": stale_feeds(client)}
    except redis.RedisError as exc:
        report["redis"] = {"ok": False, "error": str(exc)[:200]}
    required_down = [name for name, proc in report["processes"].items() if proc["expected"] and not proc["ok"]]
    # A stale feed is an alert (bots would trade on old candles) but not an outage of the platform.
    report["ok"] = report["postgres"]["ok"] and report["redis"]["ok"] and not required_down
    report["down"] = required_down
    # An old (or missing) good backup is "degraded", not down: the platform trades on, /healthz stays 200.
    report["backup"] = backup_health(get_settings(), client if report["redis"]["ok"] else None)
    report["status"] = "down" if not report["ok"] else ("degraded" if not report["backup"]["ok"] else "ok")
    return report
