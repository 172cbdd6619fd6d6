"""Backtest jobs on the `backtests` queue: one task per run (a parameter grid is one run)."""

from __future__ import annotations

from celery import shared_task

from core import tasks
from core.backtest import run_lifecycle


# acks_late: a worker killed mid-run leaves the message unacknowledged; the redelivered task finds the
# run `running` and starts it again (finished runs are left alone, so a duplicate does nothing).
@shared_task(name=tasks.RUN_BACKTEST, acks_late=True, ignore_result=True, soft_time_limit=1800, time_limit=1900)
def run_backtest(run_id: int) -> str:
    return run_lifecycle.execute_run(run_id)
