"""Higher timeframes (3m ... 4h) built from closed 1m candles, aligned to UTC boundaries.

A higher candle closes when the 1m candle of its last minute arrives. When the venue itself skipped
minutes (an outage), the partial candle is emitted as soon as a minute of a later bucket shows up,
as the venue's own klines for that period would contain only the minutes that traded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.candles.candle import MINUTE_MS, TIMEFRAME_MS, ClosedCandle


class OutOfOrder(ValueError):
    """A 1m candle not strictly after the previous one (a duplicate or a step back in time)."""


@dataclass(slots=True)
class _Partial:
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    event_ms: int | None

    def add(self, minute: ClosedCandle) -> None:
        self.high = max(self.high, minute.high)
        self.low = min(self.low, minute.low)
        self.close = minute.close
        self.volume += minute.volume
        self.event_ms = minute.event_ms

    def closed(self, venue: str, symbol: str, timeframe: str) -> ClosedCandle:
        return ClosedCandle(
            venue,
            symbol,
            timeframe,
            self.open_time,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.event_ms,
        )


class SymbolAggregator:
    """Aggregation state of one (venue, symbol). Not thread-safe: one feed loop owns it."""

    def __init__(self, venue: str, symbol: str, timeframes: list[str] | tuple[str, ...]):
        self.venue = venue
        self.symbol = symbol
        self.higher = [tf for tf in timeframes if tf != "1m"]
        self.last_open: int | None = None
        self._partials: dict[str, _Partial] = {}

    def add(self, minute: ClosedCandle) -> list[ClosedCandle]:
        """Take the next closed 1m candle; return the higher-timeframe candles it closes."""
        if minute.timeframe != "1m" or minute.open_time % MINUTE_MS:
            raise ValueError(f"expected a 1m candle on a minute boundary, got {minute.timeframe} at {minute.open_time}")
        if self.last_open is not None and minute.open_time <= self.last_open:
            what = "duplicate" if minute.open_time == self.last_open else "back in time"
            raise OutOfOrder(f"{self.symbol} 1m candle {minute.open_time} is {what} (last {self.last_open})")
        self.last_open = minute.open_time
        closed = []
        for timeframe in self.higher:
            span = TIMEFRAME_MS[timeframe]
            start = minute.open_time - minute.open_time % span
            partial = self._partials.get(timeframe)
            if partial is not None and partial.open_time != start:
                closed.append(partial.closed(self.venue, self.symbol, timeframe))
                partial = None
            if partial is None:
                partial = _Partial(
                    start, minute.open, minute.high, minute.low, minute.close, minute.volume, minute.event_ms
                )
            else:
                partial.add(minute)
            if minute.open_time + MINUTE_MS == start + span:
                closed.append(partial.closed(self.venue, self.symbol, timeframe))
                self._partials.pop(timeframe, None)
            else:
                self._partials[timeframe] = partial
        return closed


def aggregate_series(minutes: list[ClosedCandle], timeframes: list[str] | tuple[str, ...]) -> list[ClosedCandle]:
    """Every candle (1m included) a sorted 1m series produces; for imports, tests and checks."""
    if not minutes:
        return []
    aggregator = SymbolAggregator(minutes[0].venue, minutes[0].symbol, timeframes)
    out: list[ClosedCandle] = []
    for minute in minutes:
        out.append(minute)
        out.extend(aggregator.add(minute))
    return out
