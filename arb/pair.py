"""The pair the arbitrage engine trades across two perp venues, and the small helpers its parts share."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)
VENUES = ("vest", "paradex")


def as_text(mapping: dict) -> dict[str, str]:
    return {key: str(value) for key, value in mapping.items()}


def today() -> Any:
    """The trading day the daily P&L and loss limit count in (UTC)."""
    return datetime.now(UTC).date()
