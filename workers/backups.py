"""The daily backup on the `backtests` queue (the niced backtester; scheduled by celeryconfig.beat_schedule)."""

from __future__ import annotations

from celery import shared_task

from core import tasks
from core.backups.daily import run_daily_backup
from core.infra.config import get_settings


@shared_task(name=tasks.DAILY_BACKUP)
def daily_backup() -> dict:
    return run_daily_backup(get_settings())
