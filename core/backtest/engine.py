"""The backtest engine: one strategy, one symbol, decisions at each close, fills at the next open.

Rules (docs/METRICS.md has the accounting):
- At the close of candle i: in a position, `should_exit()`; flat (or just decided to exit),
  `should_long()` then `should_short()`; on an entry also `position_size()`, `stop_loss()`,
  `take_profit()`. Orders fill at the open of candle i+1 with slippage; fees on every fill.
- Stop-loss / take-profit are fixed at entry and checked intrabar from the fill candle on; a gap
  through the level fills at the open; when both are touched in one candle, the candle's path decides
  (low first when close >= open, else high first: the path the simulator replays, docs/METRICS.md).
- A trailing stop (`trailing_stop()`, a trail in %, the position's only exit order) trails the best
  price since the entry (from the fill candle's open), along each candle's path as above: on a rising
  candle the low meets the stop as it stood, then the high moves it and the close may cross it; on a
  falling one the high moves it first. It fills at its level, at the open when gapped through.
- A take-profit ladder (`take_profit_ladder()`, rungs (% from the entry's fill price, size %), with or
  without a stop-loss) closes each rung's share of the position when the candle's path reaches it (the
  nearest rung first; the last to fill closes what is left), the stop closing the rest along the same path
  rule. Each exit is its own trade in the trade list (the same entry, the rung's share of its size and
  entry fee), so trade counts and win rates count partial exits (docs/METRICS.md).
- One position at a time, no leverage: size = fraction of the free cash (all the equity when flat).
- A position still open after the last candle is closed at its close (exit reason "end_of_data").

Speed: decision methods that StrategyRuntime can evaluate over whole arrays are looked up, not
called; when nothing can happen before the next signal (no stop/target pending) the loop jumps
straight to it. Methods that read `self.position` or state run per candle as written.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from core.backtest.book import Book, Trade, equity_curve
from core.backtest.fast_path import finish_over_arrays, gc_paused, handoff_index
from core.backtest.metrics import compute_metrics, daily_equity, drawdown
from core.candles.csv_io import CANDLE_COLUMNS, CandleFileError, Gap, check_sorted, find_gaps
from core.strategies.contract import (
    DECISION_METHODS,
    FLAT,
    ORDER_METHODS,
    Position,
    Strategy,
    StrategyError,
    format_candle_time,
)
from core.strategies.indicator_cache import IndicatorCache
from core.strategies.runtime import StrategyRuntime

logger = logging.getLogger(__name__)

DEFAULT_FEE = 0.001
MAX_FEE = 0.1
MAX_SLIPPAGE_BPS = 1000.0
MAX_CASH = 1e15


class BacktestInputError(ValueError):
    """Candles or settings that cannot be backtested (the strategy never ran)."""


@dataclass(frozen=True)
class BacktestSettings:
    fee: float = DEFAULT_FEE  # fraction of notional, charged on every fill
    slippage_bps: float = 0.0  # against us on market fills (entries, signal exits, stops)
    cash: float = 10_000.0
    start_ms: int | None = None  # first candle open time included
    end_ms: int | None = None  # last candle open time included
    vectorize: bool = True  # False: call every decision method on every candle (reference mode)

    def validated(self) -> BacktestSettings:
        def finite(x) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

        if not (finite(self.fee) and 0 <= self.fee < MAX_FEE):
            raise BacktestInputError(f"fee must be a fraction in [0, {MAX_FEE}), got {self.fee!r} (0.001 = 0.1%)")
        if not (finite(self.slippage_bps) and 0 <= self.slippage_bps <= MAX_SLIPPAGE_BPS):
            raise BacktestInputError(f"slippage_bps must be in [0, {MAX_SLIPPAGE_BPS:g}], got {self.slippage_bps!r}")
        if not (finite(self.cash) and 0 < self.cash <= MAX_CASH):
            raise BacktestInputError(f"cash must be positive and at most {MAX_CASH:g}, got {self.cash!r}")
        if self.start_ms is not None and self.end_ms is not None and self.start_ms > self.end_ms:
            raise BacktestInputError("the start of the date range is after its end")
        return self


# The columns of a trades CSV (the `aristobot backtest --trades` file and a run's download), from as_dict().
TRADE_CSV_FIELDS = (
    "side", "entry_time", "entry_price", "exit_time", "exit_price", "size",
    "entry_fee", "exit_fee", "pnl", "return_pct", "exit_reason",
)  # fmt: skip


@dataclass
class BacktestResult:
    status: str  # "ok" | "failed"
    settings: BacktestSettings
    params: dict
    times_ms: np.ndarray
    trades: list[Trade] = field(default_factory=list)
    equity: np.ndarray | None = None  # mark-to-market at every candle close
    drawdown: np.ndarray | None = None  # fraction below the running peak, <= 0
    daily_equity: pd.Series | None = None
    metrics: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)  # why a metric is None
    gaps: list[Gap] = field(default_factory=list)
    evaluation: dict = field(default_factory=dict)  # method -> "vectorized" | "per candle: why"
    error: dict | None = None

    @property
    def final_equity(self) -> float | None:
        return None if self.equity is None else float(self.equity[-1])

    def to_dict(self, trades: bool = True) -> dict:
        daily = None
        if self.daily_equity is not None:
            days = cast(pd.DatetimeIndex, self.daily_equity.index)  # see metrics.daily_equity
            daily = [[day.strftime("%Y-%m-%d"), float(v)] for day, v in zip(days, self.daily_equity, strict=True)]
        return {
            "status": self.status,
            "error": self.error,
            "params": self.params,
            "settings": asdict(self.settings),
            "metrics": self.metrics,
            "notes": self.notes,
            "final_equity": self.final_equity,
            "num_candles": len(self.times_ms),
            "trades": [t.as_dict() for t in self.trades] if trades else len(self.trades),
            "daily_equity": daily,
            "gaps": [g.as_dict() for g in self.gaps],
            "evaluation": self.evaluation,
        }


# --------------------------------------------------------------------------- input


def prepare_candles(candles: pd.DataFrame, settings: BacktestSettings) -> pd.DataFrame:
    missing = [c for c in CANDLE_COLUMNS if c not in candles.columns]
    if missing:
        raise BacktestInputError(f"candles lack column(s): {', '.join(missing)}")
    if candles.empty:
        raise BacktestInputError("no candles")
    times = candles["open_time"].to_numpy(dtype="int64")
    try:
        check_sorted(times, line_offset=0)
    except CandleFileError as exc:
        raise BacktestInputError(str(exc).replace(", line", ", row")) from exc
    keep = np.ones(len(times), dtype=bool)
    if settings.start_ms is not None:
        keep &= times >= settings.start_ms
    if settings.end_ms is not None:
        keep &= times <= settings.end_ms
    if not keep.any():
        raise BacktestInputError(
            f"no candles between {format_candle_time(settings.start_ms) or 'the start'} and "
            f"{format_candle_time(settings.end_ms) or 'the end'} (data covers "
            f"{format_candle_time(int(times[0]))} to {format_candle_time(int(times[-1]))})"
        )
    selected = candles[list(CANDLE_COLUMNS)] if keep.all() else candles.loc[keep, list(CANDLE_COLUMNS)]
    if not (isinstance(selected.index, pd.RangeIndex) and selected.index.start == 0 and selected.index.step == 1):
        selected = selected.reset_index(drop=True)
    prices = selected[["open", "high", "low", "close"]].to_numpy(dtype="float64")
    if not np.isfinite(prices).all() or (prices <= 0).any():
        row = int(np.flatnonzero(~(np.isfinite(prices) & (prices > 0)).all(axis=1))[0])
        raise BacktestInputError(
            f"candle {format_candle_time(int(selected['open_time'][row]))}: prices must be positive numbers"
        )
    return selected


# --------------------------------------------------------------------------- simulation


class _Signals:
    """Per decision method: its answers over arrays (when vectorized), jump indexes, and per-candle lists."""

    def __init__(self, rt: StrategyRuntime, vectorize: bool):
        self.n = rt.n
        self.valid_from: dict[str, int] = {}
        self.evaluation: dict[str, str] = {}
        self.arrays: dict[str, np.ndarray] = {}
        for method in DECISION_METHODS:
            outcome = rt.symbolic_signal(method) if vectorize else "vectorization off"
            if isinstance(outcome, str):
                self.valid_from[method] = rt.n
                self.evaluation[method] = f"per candle: {outcome}"
                continue
            self.arrays[method], self.valid_from[method] = outcome
            self.evaluation[method] = "vectorized"
        self.entry_from = max(self.valid_from["should_long"], self.valid_from["should_short"])
        self.exit_from = self.valid_from["should_exit"]
        self.entry_idx: list[int] = []
        if "should_long" in self.arrays and "should_short" in self.arrays:
            self.entry_idx = np.flatnonzero(self.arrays["should_long"] | self.arrays["should_short"]).tolist()
        self.exit_idx: list[int] = (
            np.flatnonzero(self.arrays["should_exit"]).tolist() if "should_exit" in self.arrays else []
        )
        # Order methods that answer a constant (the defaults do) are validated, not called, per entry.
        self.constants: dict[str, tuple[Any, int]] = {}
        for method in ORDER_METHODS:
            outcome = rt.symbolic_constant(method) if vectorize else "vectorization off"
            if not isinstance(outcome, str):
                self.constants[method] = outcome

    def lists(self, length: int) -> list[list]:
        """The answers to should_long, should_short, should_exit at candles [0, length): None = call it."""
        out = []
        for method in ("should_long", "should_short", "should_exit"):
            values, valid_from = self.arrays.get(method), min(self.valid_from[method], length)
            answers: list = [None] * length if values is None else values[:length].tolist()
            answers[:valid_from] = [None] * valid_from
            out.append(answers)
        return out

    @property
    def any_vectorized(self) -> bool:
        return bool(self.arrays)


def _next_index(indexes: list[int], start: int, default: int) -> int:
    k = bisect_left(indexes, start)
    return indexes[k] if k < len(indexes) else default


def _first_touch(low: np.ndarray, high: np.ndarray, start: int, stop: int, down: float | None, up: float | None) -> int:
    """First candle in [start, stop) with low <= down or high >= up, else stop (searched in growing chunks)."""
    chunk = 64
    while start < stop:
        end = min(stop, start + chunk)
        hit = np.zeros(end - start, dtype=bool)
        if down is not None:
            hit |= low[start:end] <= down
        if up is not None:
            hit |= high[start:end] >= up
        if hit.any():
            return start + int(np.argmax(hit))
        start, chunk = end, chunk * 4
    return stop


def _intrabar_exit(
    trade: Trade, o: float, lo: float, hi: float, c: float, sl: float | None, tp: float | None
) -> tuple[float, str, bool] | None:
    """(price, reason, slipped) when the stop or target is touched in this candle, else None.

    A level the open gapped through fills at the open. When both levels lie inside the candle, the
    path decides which comes first: the low first on a rising or flat candle (close >= open), the high
    first on a falling one (the path the simulator replays a candle file along, sim/spot/replay.py)."""
    if trade.side == "long":
        stop = (min(o, sl), "stop_loss", True) if sl is not None and lo <= sl else None
        target = (max(o, tp), "take_profit", False) if tp is not None and hi >= tp else None
        stop_first = (sl is not None and o <= sl) or (not (tp is not None and o >= tp) and c >= o)
    else:
        stop = (max(o, sl), "stop_loss", True) if sl is not None and hi >= sl else None
        target = (min(o, tp), "take_profit", False) if tp is not None and lo <= tp else None
        stop_first = (sl is not None and o >= sl) or (not (tp is not None and o <= tp) and c < o)
    if stop is not None and target is not None:
        return stop if stop_first else target
    return stop or target


def _trailing_exit(
    long: bool, trail_pct: float, extreme: float, o: float, lo: float, hi: float, c: float
) -> tuple[float | None, float]:
    """(fill price or None, the best price after this candle) of a trailing stop `trail_pct` % from `extreme`,
    the best price before this candle, along the candle's path (the one `_intrabar_exit` and the simulator's
    replay take: the low first on a rising or flat candle, the high first on a falling one). A gap through
    the level fills at the open; otherwise the stop fills at its level."""
    better = max if long else min

    def level(best: float) -> float:
        return best * (1 - trail_pct / 100) if long else best * (1 + trail_pct / 100)

    def crossed(price: float, best: float) -> bool:
        return price <= level(best) if long else price >= level(best)

    if crossed(o, extreme):
        return o, extreme
    extreme = better(extreme, o)
    adverse, favourable = (lo, hi) if long else (hi, lo)
    if (c >= o) == long:  # the adverse extreme first, against the stop as it stood; then on to the close
        if crossed(adverse, extreme):
            return level(extreme), extreme
        extreme = better(extreme, favourable)
        return (level(extreme) if crossed(c, extreme) else None), extreme
    extreme = better(extreme, favourable)  # the favourable extreme first moves the stop, then the adverse one
    return (level(extreme) if crossed(adverse, extreme) else None), extreme


def _ladder_exits(
    long: bool, o: float, lo: float, hi: float, c: float, sl: float | None, levels: list[float]
) -> list[tuple[str, float]]:
    """The exits in this candle of a ladder's remaining rungs at `levels` (nearest first) and its stop, in the
    candle's path order (`_intrabar_exit`'s rule): ("take_profit", price) per rung reached, then ("stop_loss",
    price) for what is left. A level the open gapped through fills at the open."""
    if long:
        reached = [max(o, level) for level in levels if hi >= level]
        stop = min(o, sl) if sl is not None and lo <= sl else None
        stop_first = (sl is not None and o <= sl) or (o < levels[0] and c >= o)
    else:
        reached = [min(o, level) for level in levels if lo <= level]
        stop = max(o, sl) if sl is not None and hi >= sl else None
        stop_first = (sl is not None and o >= sl) or (o > levels[0] and c < o)
    if stop is not None and (stop_first or not reached):
        return [("stop_loss", stop)]
    exits = [("take_profit", price) for price in reached]
    if stop is not None and len(reached) < len(levels):
        exits.append(("stop_loss", stop))
    return exits


def _ladder_rungs(trade: Trade, ladder: tuple[tuple[float, float], ...]) -> list[tuple[float, float]]:
    """(level, size) of each rung, nearest first: `pct` % from the entry's fill price towards profit, its
    share of the position (the last to fill closes what is left)."""
    sign = 1 if trade.side == "long" else -1
    return [
        (trade.entry_price * (1 + sign * pct / 100), trade.size * size_pct / 100) for pct, size_pct in sorted(ladder)
    ]


def _simulate(rt: StrategyRuntime, sig: _Signals, candles: pd.DataFrame, settings: BacktestSettings) -> Book:
    n = rt.n
    o_arr = candles["open"].to_numpy(dtype="float64")
    l_arr = candles["low"].to_numpy(dtype="float64")
    h_arr = candles["high"].to_numpy(dtype="float64")
    c_arr = candles["close"].to_numpy(dtype="float64")
    book = Book(settings.cash, settings.fee, settings.slippage_bps / 10_000, rt.times)
    handoff = handoff_index(sig)  # from there on, the rest of the run is computed over arrays
    long_s, short_s, exit_s = sig.lists(n if handoff is None else min(n, handoff + 1))
    entry_from, exit_from = sig.entry_from, sig.exit_from
    entry_idx, exit_idx = sig.entry_idx, sig.exit_idx
    ask_long, ask_short, ask_exit = (rt.caller(m) for m in ("should_long", "should_short", "should_exit"))
    constants = sig.constants

    def order(method: str, index: int):
        known = constants.get(method)
        if known is not None and index >= known[1]:
            return rt.validate(method, known[0], index)
        return rt.call(method, index)

    jump_entries = "should_long" in sig.arrays and "should_short" in sig.arrays
    jump_exits = "should_exit" in sig.arrays
    pending_exit = False
    pending_entry: tuple | None = None  # (side, fraction, stop_loss, take_profit, trail %, ladder)
    sl = tp = trail = None  # with a ladder, tp is its nearest rung still open
    rungs: list[tuple[float, float]] = []  # a ladder's rungs still open: (level, size)
    extreme = 0.0  # a trailing stop's best price since the entry
    i = 0
    while i < n:
        trade = book.trade
        if pending_exit:
            book.close(i, float(o_arr[i]), "signal")
            pending_exit, trade = False, None
            rt.set_position(FLAT)
        if pending_entry is not None:
            side, fraction, sl, tp, trail, ladder = pending_entry
            trade = book.open(side, i, float(o_arr[i]), fraction)
            extreme = float(o_arr[i])
            rungs = [] if ladder is None else _ladder_rungs(trade, ladder)
            tp = rungs[0][0] if rungs else tp
            pending_entry = None
            rt.set_position(Position(side, trade.size, trade.entry_price, trade.entry_time_ms))
        if trade is not None and trail is not None:
            trailed, extreme = _trailing_exit(
                trade.side == "long", trail, extreme, float(o_arr[i]), float(l_arr[i]), float(h_arr[i]), float(c_arr[i])
            )
            if trailed is not None:
                book.close(i, trailed, "trailing_stop", True)
                trade = None
                rt.set_position(FLAT)
        elif trade is not None and rungs:
            prices = float(o_arr[i]), float(l_arr[i]), float(h_arr[i]), float(c_arr[i])
            for reason, price in _ladder_exits(trade.side == "long", *prices, sl, [level for level, _ in rungs]):
                if reason == "take_profit" and len(rungs) > 1:
                    book.close_part(i, price, reason, rungs.pop(0)[1])
                    continue
                book.close(i, price, reason, reason == "stop_loss")
                trade = None
                rungs = []
                break
            if trade is not None:
                tp = rungs[0][0]
                rt.set_position(Position(trade.side, trade.size, trade.entry_price, trade.entry_time_ms))
            else:
                rt.set_position(FLAT)
        elif trade is not None and (sl is not None or tp is not None):
            hit = _intrabar_exit(trade, float(o_arr[i]), float(l_arr[i]), float(h_arr[i]), float(c_arr[i]), sl, tp)
            if hit is not None:
                book.close(i, hit[0], hit[1], hit[2])
                trade = None
                rt.set_position(FLAT)
        if handoff is not None and i >= handoff:
            if trade is None or (sl is None and tp is None and trail is None):
                finish_over_arrays(rt, sig, book, i, o_arr)
                break
            if len(exit_s) < n:  # a trade opened before the handoff holds a stop: read on per candle
                long_s, short_s, exit_s = sig.lists(n)
        if i == n - 1:
            break
        # ---- decision at the close of candle i
        if trade is not None:
            ex = exit_s[i]
            if ex is None:
                ex = ask_exit(i)
            if ex:
                pending_exit = True
                rt.set_position(FLAT)
        if trade is None or pending_exit:
            go = long_s[i]
            if go is None:
                go = ask_long(i)
            side = "long" if go else None
            if side is None:
                go = short_s[i]
                if go is None:
                    go = ask_short(i)
                side = "short" if go else None
            if side is not None:
                fraction, stop, take = order("position_size", i), order("stop_loss", i), order("take_profit", i)
                trailing = rt.exits_checked(stop, take, order("trailing_stop", i), i)
                ladder = rt.ladder_checked(take, trailing, order("take_profit_ladder", i), i)
                pending_entry = (side, fraction, stop, take, trailing, ladder)
        # ---- where the next thing can happen
        if pending_exit or pending_entry is not None:
            i += 1
        elif trade is None:
            i = _next_index(entry_idx, i + 1, n - 1) if jump_entries and i + 1 >= entry_from else i + 1
        elif jump_exits and i + 1 >= exit_from and trail is None:  # a trail moves: every candle is checked
            nxt = _next_index(exit_idx, i + 1, n - 1)
            if sl is not None or tp is not None:
                down, up = (sl, tp) if trade.side == "long" else (tp, sl)
                nxt = _first_touch(l_arr, h_arr, i + 1, nxt, down, up)
            i = nxt
        else:
            i += 1
    if book.trade is not None:
        book.close(n - 1, float(candles["close"].iloc[n - 1]), "end_of_data")
    return book


# --------------------------------------------------------------------------- entry points


def run_backtest(
    strategy_cls: type[Strategy],
    candles: pd.DataFrame,
    params: Mapping[str, Any] | None = None,
    settings: BacktestSettings | None = None,
    indicators: IndicatorCache | None = None,
) -> BacktestResult:
    """Backtest in this process. Bad candles/settings/params raise; a failing strategy gives status "failed".
    `indicators`: a grid's cache shared with runs over the same candles (core/backtest/grid.py)."""
    settings = (settings or BacktestSettings()).validated()
    candles = prepare_candles(candles, settings)
    times = candles["open_time"].to_numpy(dtype="int64")
    gaps = find_gaps(times)
    if gaps:
        logger.info("backtest.gaps", extra={"gaps": len(gaps), "missing": sum(g.missing for g in gaps)})
    result = BacktestResult("failed", settings, dict(params or {}), times, gaps=gaps)
    try:
        rt = StrategyRuntime(strategy_cls, candles, params, indicators)
    except StrategyError as exc:
        if exc.kind == "params":
            raise
        result.error = exc.as_dict()
        return result
    result.params = rt.params
    try:
        sig = _Signals(rt, settings.vectorize)
        rt.track_writes_only_if_read()
        book = _simulate(rt, sig, candles, settings)
        if sig.any_vectorized and rt.vectorized_inputs_changed:
            # State written after init() feeds a vectorized answer: redo it all per candle.
            logger.info("backtest.rerun_per_candle", extra={"reason": "strategy state changed"})
            rt = StrategyRuntime(strategy_cls, candles, params, indicators)
            sig = _Signals(rt, vectorize=False)
            sig.evaluation = {m: "per candle: strategy writes state" for m in DECISION_METHODS}
            book = _simulate(rt, sig, candles, settings)
    except StrategyError as exc:
        result.error = exc.as_dict()
        return result
    with gc_paused():
        _summarise(result, book, sig, rt.n, candles, settings)
    return result


def _summarise(
    result: BacktestResult, book: Book, sig: _Signals, n: int, candles: pd.DataFrame, settings: BacktestSettings
) -> None:
    """The run's equity, drawdown, daily equity and metrics (no strategy code runs here)."""
    times = result.times_ms
    result.evaluation = sig.evaluation
    close = candles["close"].to_numpy(dtype="float64")
    equity, in_market = equity_curve(book, n, close, settings.cash)
    result.status = "ok"
    result.trades = book.trades
    result.equity = equity
    result.drawdown = drawdown(equity, settings.cash)
    result.daily_equity = daily_equity(times, equity)
    result.metrics, result.notes = compute_metrics(
        book.trades,
        times,
        equity,
        float(candles["open"].iloc[0]),
        float(close[-1]),
        settings.cash,
        in_market,
        result.daily_equity,
        result.drawdown,
    )


def candles_from_payload(payload: Mapping[str, Any]) -> pd.DataFrame:
    candles = payload.get("candles")
    if isinstance(candles, str):
        from core.candles.csv_io import read_candles_csv

        return read_candles_csv(candles)
    if isinstance(candles, Mapping):
        try:
            return pd.DataFrame({c: candles[c] for c in CANDLE_COLUMNS})
        except KeyError as exc:
            raise BacktestInputError(f"payload candles lack column {exc.args[0]!r}") from None
    raise BacktestInputError("payload 'candles' must be a CSV path or a mapping of column lists")


def settings_from_payload(payload: Mapping[str, Any]) -> BacktestSettings:
    known = {f for f in BacktestSettings.__dataclass_fields__}
    return BacktestSettings(**{k: payload[k] for k in known if k in payload and payload[k] is not None})


def run_job(strategy_cls: type[Strategy], payload: dict) -> dict:
    """Sandbox job: payload {candles (path or column lists), params, fee, slippage_bps, cash, start_ms,
    end_ms, include_trades}; returns the JSON-able result (status "failed" with an error on bad input)."""
    try:
        candles = candles_from_payload(payload)
        result = run_backtest(strategy_cls, candles, payload.get("params") or {}, settings_from_payload(payload))
    except (BacktestInputError, CandleFileError, TypeError) as exc:
        return {"status": "failed", "error": {"kind": "input", "message": str(exc), "text": str(exc)}}
    except StrategyError as exc:
        return {"status": "failed", "error": exc.as_dict()}
    return result.to_dict(trades=payload.get("include_trades", True))
