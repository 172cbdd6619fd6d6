"""Flatten on the `orders` queue: the web hands it over and shows the report it leaves (core/flatten.py).

Running it twice is harmless: a second run finds what the first left (orders already cancelled, positions
already sold) and does only the rest."""

from __future__ import annotations

from celery import shared_task

from core import flatten, tasks


@shared_task(name=tasks.FLATTEN, acks_late=True)
def flatten_user(user_id: int, broker_ids: list[int] | None) -> list[dict]:
    return [{"broker_id": r.broker_id, "failed": r.failed} for r in flatten.run_and_report(user_id, broker_ids)]
