"""What /healthz and the admin System page say about backups: the last one (age, size, verification),
the last failure, and whether the platform is "degraded" for want of a recent good (verified) backup.

A fresh install has no backup yet: that is not degraded until `max_age_h` have passed since backups were
first watched (a marker file written in the backup directory the first time this status is read), so a
platform that never manages a backup is reported one day in, and day one is not an outage.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import redis

from core.backups.archive import Backup, ensure_directory, list_backups
from core.backups.pg import BackupError
from core.infra.bus import BACKUP_LAST_FAILURE
from core.infra.config import Settings

WATCHED_SINCE = ".watched-since"


def _watched_since(settings: Settings) -> float:
    marker = settings.backup_dir / WATCHED_SINCE
    if not marker.exists():
        ensure_directory(settings.backup_dir)
        marker.write_text("backups are expected from this file's time on (core/backups/status.py)\n")
    return marker.stat().st_mtime


def last_failure(client: redis.Redis) -> dict[str, Any] | None:
    raw = client.get(BACKUP_LAST_FAILURE)
    return json.loads(raw) if raw else None


def _describe(backup: Backup, now: float) -> dict[str, Any]:
    return {
        "file": backup.dump.name,
        "created_at": backup.manifest["created_at"],
        "age_h": round((now - backup.created_at.timestamp()) / 3600, 1),
        "size_bytes": backup.manifest["size_bytes"],
        "rows": backup.manifest.get("rows_total"),
        "verification": backup.verification,
    }


def backup_health(settings: Settings, client: redis.Redis | None, now: float | None = None) -> dict[str, Any]:
    now = now or time.time()
    max_age_s = settings.file.backups.max_age_h * 3600
    report: dict[str, Any] = {"ok": True, "status": "ok", "last": None, "last_good": None, "failure": None}
    try:
        since = _watched_since(settings)
        backups = list_backups(settings.backup_dir)
    except (OSError, BackupError) as exc:
        detail = str(exc) if isinstance(exc, BackupError) else f"{settings.backup_dir}: {exc.strerror or exc}"
        return {**report, "ok": False, "status": "error", "detail": detail}
    if client is not None:
        with contextlib.suppress(redis.RedisError):  # Redis being down is reported on its own
            report["failure"] = last_failure(client)
    good = next((backup for backup in backups if backup.verified_ok), None)
    if backups:
        report["last"] = _describe(backups[0], now)
    if good:
        report["last_good"] = _describe(good, now)
        if now - good.created_at.timestamp() > max_age_s:
            report.update(
                ok=False, status="stale", detail=f"the last good backup is {report['last_good']['age_h']} h old"
            )
    elif now - since > max_age_s:
        report.update(ok=False, status="missing", detail="no verified backup since backups were first watched")
    else:
        report.update(status="none yet", detail=f"first daily backup at {settings.file.backups.daily_at} UTC")
    return report
