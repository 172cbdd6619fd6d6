"""Which backups to keep: the newest of each of the last `keep_daily` days that have one, the first of each
of the last `keep_monthly` months, and always the newest verified one. The rest is removed."""

from __future__ import annotations

import logging
from datetime import date

from core.backups.archive import Backup, remove

log = logging.getLogger(__name__)


def to_keep(backups: list[Backup], keep_daily: int, keep_monthly: int) -> set[str]:
    """Names of the dumps to keep, from a newest-first list."""
    daily: dict[date, Backup] = {}
    for backup in backups:
        day = backup.created_at.date()
        if day not in daily and len(daily) < keep_daily:
            daily[day] = backup
    monthly: dict[tuple[int, int], Backup] = {}
    for backup in reversed(backups):  # oldest first: the first of each month
        monthly.setdefault((backup.created_at.year, backup.created_at.month), backup)
    kept_months = sorted(monthly, reverse=True)[:keep_monthly]
    keep = {b.dump.name for b in daily.values()} | {monthly[month].dump.name for month in kept_months}
    newest_good = next((b for b in backups if b.verified_ok), None)
    if newest_good:
        keep.add(newest_good.dump.name)
    return keep


def prune(backups: list[Backup], keep_daily: int, keep_monthly: int) -> list[str]:
    """Remove what retention does not keep; returns the removed dump names."""
    keep = to_keep(backups, keep_daily, keep_monthly)
    removed = []
    for backup in backups:
        if backup.dump.name not in keep:
            remove(backup)
            removed.append(backup.dump.name)
    if removed:
        log.info("backups_pruned", extra={"removed": removed})
    return removed
