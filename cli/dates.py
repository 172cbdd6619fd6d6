"""Dates as the commands take them (--from / --to)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

_DAY_MS = 86_400_000


def parse_date_ms(text: str, end_of_day: bool = False) -> int:
    """YYYY-MM-DD, an ISO datetime (UTC unless it says otherwise) or integer ms."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date (YYYY-MM-DD), an ISO datetime or ms") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ms = int(moment.timestamp() * 1000)
    if end_of_day and len(text) == 10:
        ms += _DAY_MS - 1  # --to 2025-06-30 includes that whole day
    return ms
