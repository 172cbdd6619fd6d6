"""The daily backup (run by the beat's task, workers/backups.py): create, verify, prune. A failure is an
error event: one JSON log line, the System page (via Redis) and a notification to the admins. Nothing is
pruned unless the new backup verified."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import redis

from core.backups.archive import list_backups
from core.backups.dump import create_backup
from core.backups.pg import BackupError, site_from
from core.backups.retention import prune
from core.backups.verify import verify_backup
from core.infra.bus import BACKUP_LAST_FAILURE, get_redis
from core.infra.config import Settings
from core.notifications.center import notify_admins

log = logging.getLogger(__name__)


def run_daily_backup(settings: Settings) -> dict[str, Any]:
    site = site_from(settings)
    try:
        backup = verify_backup(site, create_backup(site).dump)
        if not backup.verified_ok:
            detail = backup.verification["detail"] if backup.verification else "no result"
            raise BackupError(f"backup {backup.dump.name} did not verify: {detail}")
        cfg = settings.file.backups
        removed = prune(list_backups(site.directory), cfg.keep_daily, cfg.keep_monthly)
    except BackupError as exc:
        backup_failed(str(exc))
        return {"ok": False, "error": str(exc)}
    try:
        get_redis().delete(BACKUP_LAST_FAILURE)
    except redis.RedisError:
        log.warning("backup_failure_flag_not_cleared")
    return {"ok": True, "file": str(backup.dump), "size_bytes": backup.manifest["size_bytes"], "pruned": removed}


def backup_failed(error: str) -> None:
    log.error("backup_failed", extra={"error": error})
    try:
        get_redis().set(
            BACKUP_LAST_FAILURE, json.dumps({"at": datetime.now(UTC).isoformat(timespec="seconds"), "error": error})
        )
    except redis.RedisError:
        log.warning("backup_failure_not_recorded_in_redis")
    notify_admins("error", "system", "Backup failed", error[:1000], "/admin/system", "backup:failed")
