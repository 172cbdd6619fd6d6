"""A deterministic synthetic market: one trade per second per symbol, candles and a book around it.

The price path is a pure function of (seed, symbol, second), so the live feed and any history
request describe the very same trades: a candle served by REST for a past minute is exactly the
candle the websocket closed for that minute, even across restarts with the same seed.

How the path is built, so any day can be produced on its own without replaying the past:
- day anchors (log price at each UTC midnight) follow a mean-reverting daily random walk;
- inside a day, per-second log returns with hourly volatility regimes are drawn from a generator
  keyed by (seed, symbol, day) and pinned to the two anchors as a Brownian bridge.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

LISTING_SECOND = 1_704_067_200  # 2024-01-01T00:00:00Z: no trades (and no candles) before this
SECONDS_PER_DAY = 86_400
MINUTES_PER_DAY = 1_440
_ANCHOR_DAYS = 20_000  # ~55 years of daily anchors, drawn once
_REGIME_MULTIPLIERS = np.array([0.4, 1.0, 2.6])
_REGIME_STAY = 0.85

INTERVAL_MINUTES = {
    "1m": 1,
    "3m": 3,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "2h": 120,
    "4h": 240,
    "6h": 360,
    "8h": 480,
    "12h": 720,
    "1d": 1440,
}


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    base: str
    quote: str
    start_price: Decimal
    daily_vol: float
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    trade_notional: float  # mean notional of one synthetic trade, in quote
    trailing_stop: bool = True  # exchangeInfo's allowTrailingStop: trailingDelta accepted

    def price(self, ticks: int) -> Decimal:
        return Decimal(int(ticks)) * self.tick_size

    def qty(self, steps: int) -> Decimal:
        return Decimal(int(steps)) * self.step_size


DEFAULT_SYMBOLS = (
    SymbolSpec(
        "BTCUSDT",
        "BTC",
        "USDT",
        Decimal("60000"),
        0.030,
        Decimal("0.01"),
        Decimal("0.00001"),
        Decimal("0.00001"),
        Decimal("9000"),
        Decimal("5"),
        4000.0,
    ),
    SymbolSpec(
        "ETHUSDT",
        "ETH",
        "USDT",
        Decimal("3000"),
        0.040,
        Decimal("0.01"),
        Decimal("0.0001"),
        Decimal("0.0001"),
        Decimal("90000"),
        Decimal("5"),
        2500.0,
    ),
    SymbolSpec(
        "SOLUSDT",
        "SOL",
        "USDT",
        Decimal("150"),
        0.055,
        Decimal("0.01"),
        Decimal("0.001"),
        Decimal("0.001"),
        Decimal("900000"),
        Decimal("5"),
        1500.0,
    ),
    SymbolSpec(
        "BNBUSDT",
        "BNB",
        "USDT",
        Decimal("600"),
        0.035,
        Decimal("0.01"),
        Decimal("0.001"),
        Decimal("0.001"),
        Decimal("900000"),
        Decimal("5"),
        1000.0,
    ),
)


@dataclass(frozen=True)
class Print:
    """One synthetic trade of the market (not of a user)."""

    symbol: str
    trade_id: int
    second: int
    price: Decimal
    qty: Decimal
    buyer_is_maker: bool

    @property
    def time_ms(self) -> int:
        return self.second * 1000


@dataclass(frozen=True)
class Candle:
    symbol: str
    interval: str
    open_time: int  # ms
    close_time: int  # ms, open_time + interval - 1
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal
    first_trade_id: int
    last_trade_id: int
    closed: bool


@dataclass
class _Day:
    price_ticks: np.ndarray  # int64[86400]
    qty_steps: np.ndarray  # int64[86400]
    taker_buy: np.ndarray  # bool[86400]


@dataclass
class _Minutes:
    """Per-minute aggregates of one day (int64 ticks/steps; quote sums in ticks*steps)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote: np.ndarray
    taker_volume: np.ndarray
    taker_quote: np.ndarray


class SyntheticMarket:
    first_second = LISTING_SECOND  # no trade, no candle before this market second
    end_second: int | None = None  # the market never ends (a replay ends with its file)

    def __init__(self, seed: int = 1, symbols: tuple[SymbolSpec, ...] = DEFAULT_SYMBOLS):
        self.seed = int(seed)
        self.symbols = {spec.symbol: spec for spec in symbols}
        self._index = {spec.symbol: i for i, spec in enumerate(symbols)}
        self._anchors = {spec.symbol: self._draw_anchors(spec) for spec in symbols}
        self._days: OrderedDict[tuple[str, int], _Day] = OrderedDict()
        self._minutes: OrderedDict[tuple[str, int], _Minutes] = OrderedDict()

    # --- path -----------------------------------------------------------------------------

    def _draw_anchors(self, spec: SymbolSpec) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self._index[spec.symbol], 0xA7C])
        steps = rng.standard_normal(_ANCHOR_DAYS) * spec.daily_vol
        deviation = np.empty(_ANCHOR_DAYS + 1)
        deviation[0] = 0.0
        # Mean reversion keeps decades of synthetic history within a plausible band of the start price.
        for day in range(_ANCHOR_DAYS):
            deviation[day + 1] = 0.995 * deviation[day] + steps[day]
        return math.log(float(spec.start_price)) + deviation

    def _day(self, symbol: str, day: int) -> _Day:
        key = (symbol, day)
        cached = self._days.get(key)
        if cached is not None:
            self._days.move_to_end(key)
            return cached
        spec = self.symbols[symbol]
        rng = np.random.default_rng([self.seed, self._index[symbol], day])
        regime = np.empty(24, dtype=np.int64)
        regime[0] = rng.integers(0, 3)
        switches = rng.random(24) > _REGIME_STAY
        picks = rng.integers(0, 3, size=24)
        for hour in range(1, 24):
            regime[hour] = picks[hour] if switches[hour] else regime[hour - 1]
        sigma = spec.daily_vol / math.sqrt(SECONDS_PER_DAY) * np.repeat(_REGIME_MULTIPLIERS[regime], 3600)
        walk = np.concatenate(([0.0], np.cumsum(sigma * rng.standard_normal(SECONDS_PER_DAY))))
        fraction = np.arange(SECONDS_PER_DAY + 1) / SECONDS_PER_DAY
        anchors = self._anchors[symbol]
        offset = day - LISTING_SECOND // SECONDS_PER_DAY
        start, end = anchors[offset], anchors[offset + 1]
        log_price = walk - fraction * walk[-1] + start + fraction * (end - start)
        ticks = np.rint(np.exp(log_price[:-1]) / float(spec.tick_size)).astype(np.int64)
        mean_qty = spec.trade_notional / float(spec.start_price) / float(spec.step_size)
        # One integer draw feeds both the size (uniform 1..2*mean) and the aggressor side (low bit).
        bits = rng.integers(0, 1 << 62, size=SECONDS_PER_DAY, dtype=np.int64)
        qty = 1 + (bits >> 1) % max(1, round(2 * mean_qty))
        taker_buy = (bits & 1).astype(bool)
        result = _Day(np.maximum(ticks, 1), qty, taker_buy)
        self._days[key] = result
        # Two days a symbol (today's trades, and yesterday's for a candle across midnight): a smaller cache
        # evicted each symbol's day before its next second, so every trade drew a whole day again (7 ms).
        while len(self._days) > 2 * len(self.symbols):
            self._days.popitem(last=False)
        return result

    def _day_minutes(self, symbol: str, day: int) -> _Minutes:
        key = (symbol, day)
        cached = self._minutes.get(key)
        if cached is not None:
            self._minutes.move_to_end(key)
            return cached
        raw = self._day(symbol, day)
        price = raw.price_ticks.reshape(MINUTES_PER_DAY, 60)
        qty = raw.qty_steps.reshape(MINUTES_PER_DAY, 60)
        taker = raw.taker_buy.reshape(MINUTES_PER_DAY, 60)
        notional = price * qty
        result = _Minutes(
            open=price[:, 0].copy(),
            high=price.max(axis=1),
            low=price.min(axis=1),
            close=price[:, -1].copy(),
            volume=qty.sum(axis=1),
            quote=notional.sum(axis=1),
            taker_volume=np.where(taker, qty, 0).sum(axis=1),
            taker_quote=np.where(taker, notional, 0).sum(axis=1),
        )
        self._minutes[key] = result
        while len(self._minutes) > 400:
            self._minutes.popitem(last=False)
        return result

    # --- trades ---------------------------------------------------------------------------

    @staticmethod
    def trade_id(second: int) -> int:
        return second - LISTING_SECOND + 1

    def trade(self, symbol: str, second: int) -> Print:
        spec = self.symbols[symbol]
        day, index = divmod(second, SECONDS_PER_DAY)
        raw = self._day(symbol, day)
        return Print(
            symbol=symbol,
            trade_id=self.trade_id(second),
            second=second,
            price=spec.price(raw.price_ticks[index]),
            qty=spec.qty(raw.qty_steps[index]),
            buyer_is_maker=not bool(raw.taker_buy[index]),
        )

    def price_ticks(self, symbol: str, second: int) -> int:
        day, index = divmod(second, SECONDS_PER_DAY)
        return int(self._day(symbol, day).price_ticks[index])

    # --- candles --------------------------------------------------------------------------

    def _minute_rows(self, symbol: str, first_minute: int, end_minute: int) -> dict[str, np.ndarray]:
        """Aggregates of the full minutes [first_minute, end_minute)."""
        parts: dict[str, list[np.ndarray]] = {name: [] for name in _Minutes.__dataclass_fields__}
        minute = first_minute
        while minute < end_minute:
            day, index = divmod(minute, MINUTES_PER_DAY)
            stop = min(MINUTES_PER_DAY, index + (end_minute - minute))
            rows = self._day_minutes(symbol, day)
            for name in parts:
                parts[name].append(getattr(rows, name)[index:stop])
            minute += stop - index
        return {name: np.concatenate(chunks) if chunks else np.empty(0, np.int64) for name, chunks in parts.items()}

    def _partial_minute(self, symbol: str, minute: int, last_second: int) -> dict[str, np.ndarray]:
        """Aggregates of one minute's seconds up to last_second inclusive, shaped like one minute row."""
        day, index = divmod(minute * 60, SECONDS_PER_DAY)
        raw = self._day(symbol, day)
        end = index + (last_second - minute * 60) + 1
        price, qty, taker = raw.price_ticks[index:end], raw.qty_steps[index:end], raw.taker_buy[index:end]
        notional = price * qty
        return {
            "open": price[:1],
            "high": price.max(keepdims=True),
            "low": price.min(keepdims=True),
            "close": price[-1:],
            "volume": qty.sum(keepdims=True),
            "quote": notional.sum(keepdims=True),
            "taker_volume": np.where(taker, qty, 0).sum(keepdims=True),
            "taker_quote": np.where(taker, notional, 0).sum(keepdims=True),
        }

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
        """Candles as Binance serves them: oldest first, the last one possibly still open."""
        minutes = INTERVAL_MINUTES[interval]
        span = minutes * 60_000
        now_second = now_ms // 1000
        latest_open = (now_ms // span) * span
        listing_open = -(-LISTING_SECOND * 1000 // span) * span
        last_open = latest_open if end_ms is None else min(latest_open, (end_ms // span) * span)
        if start_ms is not None:
            first_open = max(listing_open, -(-start_ms // span) * span)
            last_open = min(last_open, first_open + (limit - 1) * span)
        else:
            first_open = max(listing_open, last_open - (limit - 1) * span)
        if last_open < first_open:
            return []
        first_minute = first_open // 60_000
        now_minute = now_second // 60
        end_minute = min(last_open // 60_000 + minutes, now_minute)
        rows = self._minute_rows(symbol, first_minute, end_minute)
        if last_open // 60_000 + minutes > now_minute:
            partial = self._partial_minute(symbol, now_minute, now_second)
            rows = {name: np.concatenate((rows[name], partial[name])) for name in rows}
        count = len(rows["open"])
        starts = np.arange(0, count, minutes)
        spec = self.symbols[symbol]
        notional_unit = spec.tick_size * spec.step_size
        candles = []
        for group, begin in enumerate(starts):
            end = min(begin + minutes, count)
            open_ms = first_open + group * span
            first_second = open_ms // 1000
            last_second = min(open_ms // 1000 + minutes * 60 - 1, now_second)
            candles.append(
                Candle(
                    symbol=symbol,
                    interval=interval,
                    open_time=open_ms,
                    close_time=open_ms + span - 1,
                    open=spec.price(rows["open"][begin]),
                    high=spec.price(rows["high"][begin:end].max()),
                    low=spec.price(rows["low"][begin:end].min()),
                    close=spec.price(rows["close"][end - 1]),
                    volume=spec.qty(rows["volume"][begin:end].sum()),
                    quote_volume=Decimal(int(rows["quote"][begin:end].sum())) * notional_unit,
                    trades=last_second - first_second + 1,
                    taker_buy_volume=spec.qty(rows["taker_volume"][begin:end].sum()),
                    taker_buy_quote_volume=Decimal(int(rows["taker_quote"][begin:end].sum())) * notional_unit,
                    first_trade_id=self.trade_id(first_second),
                    last_trade_id=self.trade_id(last_second),
                    closed=last_second == open_ms // 1000 + minutes * 60 - 1 and now_second > last_second,
                )
            )
        return candles

    def candle(self, symbol: str, interval: str, open_ms: int, last_second: int) -> Candle:
        """The candle opened at open_ms as it stands once the trade of last_second has printed."""
        rows = self.klines(symbol, interval, now_ms=last_second * 1000 + 999, start_ms=open_ms, limit=1)
        candle = rows[0]
        if last_second == (candle.close_time // 1000):
            return _closed(candle)
        return candle


def _closed(candle: Candle) -> Candle:
    values = dict(candle.__dict__)
    values["closed"] = True
    return Candle(**values)


@dataclass
class Book:
    """The synthetic book of one symbol, rebuilt around the last price every second.

    Levels sit on a fixed grid so that a small move changes few levels, which keeps the diff-depth
    stream realistic; quantities are a deterministic hash of (level, 3-second epoch).
    """

    spec: SymbolSpec
    seed: int
    update_id: int = 0
    bids: dict[int, int] | None = None  # price ticks -> qty steps
    asks: dict[int, int] | None = None
    levels: int = 50

    def rebuild(self, last_ticks: int, second: int) -> tuple[int, int, list[tuple[int, int]], list[tuple[int, int]]]:
        """Moves the book to a new last price; returns (first_id, last_id, bid_changes, ask_changes)."""
        spacing = max(1, round(last_ticks * 0.00002))
        half_spread = max(1, round(last_ticks * 0.00004))
        best_bid = ((last_ticks - half_spread) // spacing) * spacing
        best_ask = -(-(last_ticks + half_spread) // spacing) * spacing
        if best_ask <= best_bid:
            best_ask = best_bid + spacing
        epoch = second // 3
        mean_steps = max(
            1, int(self.spec.trade_notional * 4 / float(self.spec.start_price) / float(self.spec.step_size))
        )
        bids = {
            best_bid - i * spacing: self._qty(best_bid - i * spacing, epoch, mean_steps)
            for i in range(self.levels)
            if best_bid - i * spacing > 0
        }
        asks = {
            best_ask + i * spacing: self._qty(best_ask + i * spacing, epoch, mean_steps) for i in range(self.levels)
        }
        bid_changes = _diff(self.bids or {}, bids)
        ask_changes = _diff(self.asks or {}, asks)
        self.bids, self.asks = bids, asks
        first = self.update_id + 1
        self.update_id += max(1, len(bid_changes) + len(ask_changes))
        return first, self.update_id, bid_changes, ask_changes

    def _qty(self, price_ticks: int, epoch: int, mean_steps: int) -> int:
        mixed = (price_ticks * 0x9E3779B1 ^ epoch * 0x85EBCA6B ^ self.seed * 0xC2B2AE35) & 0xFFFFFFFF
        mixed = (mixed ^ (mixed >> 15)) * 0x2C1B3C6D & 0xFFFFFFFF
        return 1 + (mixed % (2 * mean_steps))

    def sides(self, depth: int = 100) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        bids = sorted((self.bids or {}).items(), reverse=True)[:depth]
        asks = sorted((self.asks or {}).items())[:depth]
        return (
            [(self.spec.price(p), self.spec.qty(q)) for p, q in bids],
            [(self.spec.price(p), self.spec.qty(q)) for p, q in asks],
        )


def _diff(old: dict[int, int], new: dict[int, int]) -> list[tuple[int, int]]:
    changes = [(price, qty) for price, qty in new.items() if old.get(price) != qty]
    changes += [(price, 0) for price in old if price not in new]
    return sorted(changes)
