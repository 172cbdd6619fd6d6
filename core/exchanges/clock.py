"""Venue clock offset, measured rather than assumed.

Signed requests carry a timestamp the venue checks against its own clock (Binance refuses one more
than 1 s ahead or older than recvWindow). We ask the venue for its time a few times and, for each
round trip, compare its answer with our clock at the midpoint of the trip (send time + RTT/2). The
median offset is robust to one slow trip.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


def _local_ms() -> float:
    return time.time() * 1000.0


@dataclass(frozen=True)
class OffsetSample:
    offset_ms: float
    rtt_ms: float


def measure_offset(
    fetch_server_ms: Callable[[], float], *, samples: int = 3, local_ms: Callable[[], float] = _local_ms
) -> OffsetSample:
    """Median (server - local) offset in ms over `samples` round trips, with the median RTT."""
    taken: list[OffsetSample] = []
    for _ in range(samples):
        sent = local_ms()
        server = float(fetch_server_ms())
        received = local_ms()
        rtt = received - sent
        taken.append(OffsetSample(offset_ms=server - (sent + rtt / 2), rtt_ms=rtt))
    return OffsetSample(
        offset_ms=statistics.median(s.offset_ms for s in taken), rtt_ms=statistics.median(s.rtt_ms for s in taken)
    )


class VenueClock:
    """Local time corrected by the venue's measured offset; re-measured when older than `max_age_s`."""

    def __init__(
        self,
        fetch_server_ms: Callable[[], float],
        *,
        venue: str = "",
        samples: int = 3,
        max_age_s: float = 600.0,
        local_ms: Callable[[], float] = _local_ms,
    ):
        self._fetch = fetch_server_ms
        self._venue = venue
        self._samples = samples
        self._max_age_s = max_age_s
        self._local_ms = local_ms
        self._lock = threading.Lock()
        self._offset_ms: float | None = None
        self._measured_at = 0.0

    @property
    def offset_ms(self) -> float | None:
        return self._offset_ms

    def sync(self) -> OffsetSample:
        sample = measure_offset(self._fetch, samples=self._samples, local_ms=self._local_ms)
        with self._lock:
            self._offset_ms = sample.offset_ms
            self._measured_at = time.monotonic()
        log.info(
            "clock_synced",
            extra={"venue": self._venue, "offset_ms": round(sample.offset_ms, 1), "rtt_ms": round(sample.rtt_ms, 1)},
        )
        return sample

    def adopt(self, other: VenueClock) -> None:
        """Take another clock's measure of the same venue (no request until it is stale)."""
        with other._lock:
            offset, measured_at = other._offset_ms, other._measured_at
        if offset is None:
            return
        with self._lock:
            self._offset_ms, self._measured_at = offset, measured_at

    def now_ms(self) -> int:
        stale = self._offset_ms is None or time.monotonic() - self._measured_at > self._max_age_s
        if stale:
            self.sync()
        return int(self._local_ms() + (self._offset_ms or 0.0))
