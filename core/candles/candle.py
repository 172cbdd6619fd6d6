"""The closed candle every part of the heartbeat passes around, and the timeframes it comes in."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.infra.config import TIMEFRAMES

MINUTE_MS = 60_000
TIMEFRAME_MS = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
}
assert tuple(TIMEFRAME_MS) == TIMEFRAMES


def timeframe_ms(timeframe: str) -> int:
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAMES)}") from None


def bucket_start(open_time_ms: int, timeframe: str) -> int:
    """Open time of the `timeframe` candle containing this instant (UTC-aligned: epoch multiples)."""
    return open_time_ms - open_time_ms % timeframe_ms(timeframe)


@dataclass(frozen=True, slots=True)
class ClosedCandle:
    venue: str
    symbol: str
    timeframe: str
    open_time: int  # ms UTC
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    event_ms: int | None = None  # venue event time of the message that closed it (live feed only)

    @property
    def close_time(self) -> int:
        """First ms after the candle (the instant it closed)."""
        return self.open_time + TIMEFRAME_MS[self.timeframe]

    def fields(self) -> dict[str, str]:
        """Flat string fields, as stored in Redis streams and sent to browsers."""
        out = {
            "t": str(self.open_time),
            "o": str(self.open),
            "h": str(self.high),
            "l": str(self.low),
            "c": str(self.close),
            "v": str(self.volume),
        }
        if self.event_ms is not None:
            out["E"] = str(self.event_ms)
        return out

    @classmethod
    def from_fields(cls, venue: str, symbol: str, timeframe: str, fields: dict[str, str]) -> ClosedCandle:
        return cls(
            venue,
            symbol,
            timeframe,
            int(fields["t"]),
            Decimal(fields["o"]),
            Decimal(fields["h"]),
            Decimal(fields["l"]),
            Decimal(fields["c"]),
            Decimal(fields["v"]),
            int(fields["E"]) if "E" in fields else None,
        )
