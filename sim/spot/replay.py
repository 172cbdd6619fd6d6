"""A replayed market: real 1m candles from a file, played back N times faster than the wall clock.

`aristobot sim --replay CSV [--speed N]` (or `sim.replay` in config.yaml) serves this market instead of
the synthetic one, for one symbol (the file name's prefix, `BTCUSDT-1m.csv` -> BTCUSDT). It answers the
same questions as SyntheticMarket (a trade per market second, klines, candles), so the Binance face,
the streams, the books and the matching engine work unchanged; only the clock differs.

The path inside each minute (60 trades, one per market second) honours the candle exactly:
- seconds 0..HOLD-1 trade at the open (a fill right after the close lands at the open, as a backtest
  assumes, as long as the platform reacts within HOLD market seconds: HOLD / speed wall seconds);
- then a straight walk to the first extreme, then to the other, then to the close at second 59; the low
  comes first on a rising candle (close >= open), the high first on a falling one;
- the volume is split evenly over the 60 trades (in units of 1e-8), so a kline's volume is the file's.

Market time: it starts held at the file's first open; `ReplayClock.start()` (called at once by the
`sim` process; by the parity bench when its bot is ready) lets it run at `speed` market seconds per
wall second. It stops at the end of the file (the last candle closes, nothing trades after it). A gate
(`set_gate`) holds it at a given second until moved: the parity bench lets the market into each minute
only once the bot has acted on the previous close, so a loaded machine's latency cannot move a fill by
whole candles (that latency is what `bench bots` measures).
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np

from core.candles.csv_io import CandleFileError, read_candles_csv
from sim.spot.market import DEFAULT_SYMBOLS, INTERVAL_MINUTES, Candle, Print, SymbolSpec

HOLD_SECONDS = 20
_FIRST_EXTREME_SECOND = 34
_SECOND_EXTREME_SECOND = 52
VOLUME_UNIT = Decimal("1e-8")
MINUTE_MS = 60_000
MAX_SPEED = 3600.0


class ReplayError(ValueError):
    """A replay file or setting that cannot be played; the message names the file line at fault."""


class ReplayClock:
    """Market time in seconds: held at `start_s` until start(), then `speed` times the wall clock, never
    past the gate when one is set (the parity bench opens it minute by minute: lockstep with the bot)."""

    def __init__(self, start_s: int, end_s: int, speed: float):
        self.start_s, self.end_s, self.speed = start_s, end_s, speed  # end_s: the first second after the file
        self.wall_start: float | None = None
        self.gate_s: float | None = None
        self._base_s, self._base_wall = float(start_s), 0.0  # market time at a wall time: the anchor
        self._anchors: list[tuple[float, float, float | None]] = []  # (wall, market, gate) from each change
        self._lock = threading.Lock()

    def start(self, wall: float | None = None) -> None:
        with self._lock:
            if self.wall_start is None:
                self.wall_start = time.time() if wall is None else wall
                self._base_s, self._base_wall = float(self.start_s), self.wall_start
                self._anchors.append((self._base_wall, self._base_s, self.gate_s))

    def _now(self) -> float:
        if self.wall_start is None:
            return float(self.start_s)
        wall = time.time()
        market = self._base_s + (wall - self._base_wall) * self.speed
        if self.gate_s is not None and market > self.gate_s:
            market = self.gate_s
            self._base_s, self._base_wall = market, wall  # held: time goes on from here when the gate opens
        return min(float(self.end_s), market)

    def now(self) -> float:
        with self._lock:
            return self._now()

    def set_gate(self, gate_s: float | None) -> None:
        """Market time will not pass gate_s (None: no gate)."""
        with self._lock:
            current = self._now()
            self.gate_s = gate_s
            if self.wall_start is not None:
                self._base_s, self._base_wall = current, time.time()
                self._anchors.append((self._base_wall, self._base_s, gate_s))

    def wall_at(self, market_s: float) -> float:
        """The wall time at which the market reached `market_s` (the inverse of market_at)."""
        with self._lock:
            index = bisect.bisect_right(self._anchors, market_s, key=lambda anchor: anchor[1]) - 1
            if index < 0:
                return self.wall_start if self.wall_start is not None else time.time()
            base_wall, base_s, _ = self._anchors[index]
            return base_wall + (market_s - base_s) / self.speed

    def market_at(self, wall: float) -> float:
        """The market time it was at wall time `wall` (what the venue's wall-clock timestamps mean)."""
        with self._lock:
            index = bisect.bisect_right(self._anchors, wall, key=lambda anchor: anchor[0]) - 1
            if index < 0:
                return float(self.start_s)
            base_wall, base_s, gate = self._anchors[index]
            market = base_s + (wall - base_wall) * self.speed
            return min(float(self.end_s), market if gate is None else min(market, gate))

    def wall_seconds(self, market_seconds: float) -> float:
        return market_seconds / self.speed

    def describe(self) -> dict:
        with self._lock:
            self._now()
            return {
                "start_ms": self.start_s * 1000,
                "end_ms": self.end_s * 1000,
                "speed": self.speed,
                "wall_start": self.wall_start,
                "base_ms": self._base_s * 1000,
                "base_wall": self._base_wall,
                "gate_ms": None if self.gate_s is None else self.gate_s * 1000,
            }


def symbol_of(path: Path) -> str:
    return path.name.split("-", 1)[0].split(".", 1)[0].upper()


def _spec_for(symbol: str) -> SymbolSpec:
    for spec in DEFAULT_SYMBOLS:
        if spec.symbol == symbol:
            return spec
    known = ", ".join(s.symbol for s in DEFAULT_SYMBOLS)
    raise ReplayError(f"cannot replay {symbol!r}: the simulator lists {known} (name the file SYMBOL-1m.csv)")


def _ticks(values: np.ndarray, tick: Decimal, name: str, source: str) -> np.ndarray:
    scaled = values / float(tick)
    ticks = np.rint(scaled)
    bad = np.flatnonzero(np.abs(scaled - ticks) > 1e-6)
    if bad.size:
        row = int(bad[0])
        raise ReplayError(f"{source}, line {row + 2}: {name} {values[row]!r} is not a multiple of the tick {tick}")
    return ticks.astype(np.int64)


class ReplayMarket:
    """The SyntheticMarket interface over one symbol's 1m candles (see the module docstring)."""

    def __init__(self, path: str | Path, speed: float = 60.0, symbol: str | None = None):
        path = Path(path)
        if not (isinstance(speed, int | float) and 0 < speed <= MAX_SPEED):
            raise ReplayError(f"replay speed must be in (0, {MAX_SPEED:g}], got {speed!r}")
        try:
            frame = read_candles_csv(path)
        except CandleFileError as exc:
            raise ReplayError(str(exc)) from exc
        source = str(path)
        times = frame["open_time"].to_numpy()
        off_minute = np.flatnonzero(times % MINUTE_MS)
        if off_minute.size:
            row = int(off_minute[0])
            raise ReplayError(f"{source}, line {row + 2}: open_time {int(times[row])} is not on a minute boundary")
        steps = np.diff(times)
        gaps = np.flatnonzero(steps != MINUTE_MS)
        if gaps.size:
            row = int(gaps[0]) + 1
            missing = int(steps[row - 1] // MINUTE_MS) - 1
            raise ReplayError(
                f"{source}, line {row + 2}: gap of {missing} minute(s) before open_time {int(times[row])} "
                "(a replay needs every 1m candle, none missing)"
            )
        self.spec = _spec_for(symbol or symbol_of(path))
        self.symbol = self.spec.symbol
        self.symbols = {self.symbol: self.spec}
        self.seed = 0
        self.source = source
        tick = self.spec.tick_size
        self.open, self.high, self.low, self.close = (
            _ticks(frame[name].to_numpy(), tick, name, source) for name in ("open", "high", "low", "close")
        )
        self.volume = np.rint(frame["volume"].to_numpy() / float(VOLUME_UNIT)).astype(np.int64)
        self.first_minute = int(times[0]) // MINUTE_MS
        self.count = len(times)
        self.first_second = self.first_minute * 60
        self.end_second: int | None = (self.first_minute + self.count) * 60
        self.clock = ReplayClock(self.first_second, self.end_second, float(speed))
        self._lock = threading.Lock()
        self._cached: tuple[int, np.ndarray, np.ndarray] | None = None

    # --- the path ---------------------------------------------------------------------------

    def paths(self, first: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(price ticks, volume units) of each second of the file's minutes [first, stop): shape (k, 60)."""
        o, h, lo, c = self.open[first:stop], self.high[first:stop], self.low[first:stop], self.close[first:stop]
        rising = c >= o
        x1, x2 = np.where(rising, lo, h), np.where(rising, h, lo)
        knots_s = (0, HOLD_SECONDS - 1, _FIRST_EXTREME_SECOND, _SECOND_EXTREME_SECOND, 59)
        knots = (o, o, x1, x2, c)
        prices = np.empty((len(o), 60), dtype=np.int64)
        for k in range(len(knots) - 1):
            (s0, a), (s1, b) = (knots_s[k], knots[k]), (knots_s[k + 1], knots[k + 1])
            span = np.arange(s0, s1 + 1)
            weight = (span - s0) / (s1 - s0)
            prices[:, s0 : s1 + 1] = np.rint(a[:, None] + (b - a)[:, None] * weight[None, :]).astype(np.int64)
        units = self.volume[first:stop]
        qty = np.repeat((units // 60)[:, None], 60, axis=1)
        qty[np.arange(60)[None, :] < (units % 60)[:, None]] += 1
        return prices, qty

    def _minute(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if self._cached is None or self._cached[0] != index:
                prices, qty = self.paths(index, index + 1)
                self._cached = (index, prices[0], qty[0])
            return self._cached[1], self._cached[2]

    def _position(self, second: int) -> tuple[int, int]:
        """(file row, second in the minute), clamped to the file: after its end, the last close holds."""
        index, offset = divmod(second - self.first_second, 60)
        if index < 0:
            return 0, 0
        if index >= self.count:
            return self.count - 1, 59
        return index, offset

    # --- trades -----------------------------------------------------------------------------

    def trade_id(self, second: int) -> int:
        return second - self.first_second + 1

    def trade(self, symbol: str, second: int) -> Print:
        index, offset = self._position(second)
        prices, qty = self._minute(index)
        before = prices[offset - 1] if offset else (self.close[index - 1] if index else prices[0])
        inside = second < self.clock.end_s
        return Print(
            symbol=symbol,
            trade_id=self.trade_id(second),
            second=second,
            price=self.spec.price(prices[offset]),
            qty=Decimal(int(qty[offset]) if inside else 0) * VOLUME_UNIT,
            buyer_is_maker=bool(prices[offset] < before),
        )

    def price_ticks(self, symbol: str, second: int) -> int:
        index, offset = self._position(second)
        return int(self._minute(index)[0][offset])

    # --- candles ----------------------------------------------------------------------------

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        now_ms: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        """Candles as Binance serves them, from the file's minutes that began by now_ms."""
        minutes = INTERVAL_MINUTES[interval]
        span = minutes * MINUTE_MS
        first_ms = self.first_minute * MINUTE_MS
        last_ms = (self.first_minute + self.count - 1) * MINUTE_MS
        latest_open = (min(now_ms, last_ms) // span) * span
        last_open = latest_open if end_ms is None else min(latest_open, (end_ms // span) * span)
        if start_ms is not None:
            first_open = max(-(-start_ms // span) * span, first_ms - first_ms % span)
            last_open = min(last_open, first_open + (limit - 1) * span)
        else:
            first_open = max(first_ms - first_ms % span, last_open - (limit - 1) * span)
        if last_open < first_open or now_ms < first_ms:
            return []
        return [self._candle(interval, open_ms, span, now_ms) for open_ms in range(first_open, last_open + 1, span)]

    def _candle(self, interval: str, open_ms: int, span: int, now_ms: int) -> Candle:
        first = max(0, open_ms // MINUTE_MS - self.first_minute)
        now_second = now_ms // 1000
        last_second = min(open_ms // 1000 + span // 1000 - 1, now_second)
        stop = min(self.count, (last_second // 60) - self.first_minute + 1)
        prices, qty = self.paths(first, stop)
        seen = last_second - (self.first_minute + stop - 1) * 60 + 1  # seconds of the last minute printed
        printed = (stop - first - 1) * 60 + seen
        prices, qty = prices.reshape(-1)[:printed], qty.reshape(-1)[:printed]
        previous = np.concatenate(([prices[0]], prices[:-1]))
        taker = prices >= previous
        quote = prices * qty
        spec = self.spec
        notional = spec.tick_size * VOLUME_UNIT
        first_second = (self.first_minute + first) * 60
        return Candle(
            symbol=self.symbol,
            interval=interval,
            open_time=open_ms,
            close_time=open_ms + span - 1,
            open=spec.price(prices[0]),
            high=spec.price(prices.max()),
            low=spec.price(prices.min()),
            close=spec.price(prices[-1]),
            volume=Decimal(int(qty.sum())) * VOLUME_UNIT,
            quote_volume=Decimal(int(quote.sum())) * notional,
            trades=len(prices),
            taker_buy_volume=Decimal(int(qty[taker].sum())) * VOLUME_UNIT,
            taker_buy_quote_volume=Decimal(int(quote[taker].sum())) * notional,
            first_trade_id=self.trade_id(first_second),
            last_trade_id=self.trade_id(first_second + len(prices) - 1),
            closed=last_second == open_ms // 1000 + span // 1000 - 1 and now_second > last_second,
        )

    def candle(self, symbol: str, interval: str, open_ms: int, last_second: int) -> Candle:
        """The candle opened at open_ms as it stands once the trade of last_second has printed."""
        span = INTERVAL_MINUTES[interval] * MINUTE_MS
        candle = self._candle(interval, open_ms, span, last_second * 1000 + 999)
        if last_second == candle.close_time // 1000:
            return replace(candle, closed=True)
        return candle
