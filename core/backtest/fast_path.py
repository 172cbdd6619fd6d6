"""The rest of a run computed over arrays, when nothing in it needs a per-candle call.

engine._simulate hands off here at the top of a candle (its fills done, nothing pending) once every
decision method is answered over arrays, every order method is a constant and no stop, target, trailing
stop or take-profit ladder is set. From there the run is a plain alternation: flat, the next entry
signal opens a trade at the next open; in a trade, the next exit signal from its fill candle on closes
it at the next open, and on that candle an entry signal opens the next one (long checked before short,
as in the loop). The walk from one signal to the next is two bisections per trade; fills, fees and cash
are the same float operations as engine._Book's, in the same order, so both paths give bit-identical
trades and equity (tests/core/backtest/test_engine.py).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np

from core.backtest.book import Trade

if TYPE_CHECKING:
    from core.backtest.book import Book
    from core.backtest.engine import _Signals
    from core.strategies.runtime import StrategyRuntime


def handoff_index(sig: _Signals) -> int | None:
    """The candle from which the rest of the run can be computed over arrays, or None (never)."""
    decisions = ("should_long", "should_short", "should_exit")
    orders = ("position_size", "stop_loss", "take_profit", "trailing_stop", "take_profit_ladder")
    if not all(m in sig.arrays for m in decisions) or not all(m in sig.constants for m in orders):
        return None
    if any(sig.constants[m][0] is not None for m in orders[1:]):
        return None  # an exit order is checked per candle by the engine
    return max(*(sig.valid_from[m] for m in decisions), *(sig.constants[m][1] for m in orders))


def _decisions(entry: np.ndarray, exit_: np.ndarray, in_trade: bool) -> tuple[np.ndarray, np.ndarray]:
    """(entry decisions, exit decisions) as indexes into the signal arrays (decisions at their candles).

    Holding is a latch that only a candle with a signal can change: an entry signal sets it (from flat
    it opens, on an exit candle it re-opens), an exit signal without one resets it. So after each such
    candle it is that candle's entry answer, and before it the answer of the one before (`in_trade`
    before the first)."""
    either = np.flatnonzero(entry | exit_)
    entering, exiting = entry[either], exit_[either]
    before = np.empty(len(either), dtype=bool)
    before[:1] = in_trade
    before[1:] = entering[:-1]
    return either[entering & (~before | exiting)], either[before & exiting]


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a run's trades are built and summed: tens of thousands of new
    objects trigger full collections that cost more than the work itself (measured: 30-80 ms of a
    0.25 s run). No strategy code runs inside; collection resumes after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def finish_over_arrays(rt: StrategyRuntime, sig: _Signals, book: Book, start: int, opens: np.ndarray) -> None:
    """Every trade from the decision at candle `start` on, into `book` (a trade open at the end stays open)."""
    with gc_paused():
        _finish(rt, sig, book, start, opens)


def _finish(rt: StrategyRuntime, sig: _Signals, book: Book, start: int, opens: np.ndarray) -> None:
    n = rt.n
    longs, shorts = sig.arrays["should_long"][start : n - 1], sig.arrays["should_short"][start : n - 1]
    entries, exits = _decisions(longs | shorts, sig.arrays["should_exit"][start : n - 1], book.trade is not None)
    if book.trade is not None:
        if not len(exits):
            return
        first_exit, exits = int(exits[0]) + start, exits[1:]
        book.close(first_exit + 1, float(opens[first_exit + 1]), "signal")
    if not len(entries):
        return
    fraction = rt.validate("position_size", sig.constants["position_size"][0], int(entries[0]) + start)
    is_long = longs[entries]
    fill_in = entries + start + 1
    fill_out = exits + start + 1  # one fewer than the entries when the last trade is open at the end
    slip, fee = book.slip, book.fee
    price_in = np.where(is_long, opens[fill_in] * (1 + slip), opens[fill_in] * (1 - slip))
    price_out = np.where(is_long[: len(fill_out)], opens[fill_out] * (1 - slip), opens[fill_out] * (1 + slip))
    cash, divisor = book.cash, 1 + fee
    before, after_open, after_close = [], [], []  # the cash before each entry, after it, after its exit
    closing = price_out.tolist()
    for k, (p_in, long) in enumerate(zip(price_in.tolist(), is_long.tolist(), strict=True)):
        # engine's Book.open and close, the same operations in the same order
        before.append(cash)
        notional = fraction * cash / divisor
        entry_fee = notional * fee
        size = notional / p_in
        cash += -(notional + entry_fee) if long else notional - entry_fee
        after_open.append(cash)
        if k == len(closing):
            break
        value = size * closing[k]
        if long:
            cash += value - value * fee
        else:
            cash -= value + value * fee
        after_close.append(cash)
    book.cash = cash
    notional = fraction * np.array(before) / divisor
    entry_fees = notional * fee
    sizes = notional / price_in
    closed = len(fill_out)
    events = np.empty(len(fill_in) + closed, dtype=np.int64), np.empty(len(fill_in) + closed)
    for column, opened, shut in ((0, fill_in, fill_out), (1, after_open, after_close)):
        events[column][0::2], events[column][1::2] = opened, shut
    book.event_at.extend(events[0].tolist())
    book.event_cash.extend(events[1].tolist())
    _record(book, is_long, fill_in, fill_out, price_in, price_out, sizes, entry_fees)


def _record(book: Book, is_long, fill_in, fill_out, price_in, price_out, sizes, entry_fees) -> None:
    closed = len(fill_out)
    size, p_in = sizes[:closed], price_in[:closed]
    value = size * price_out
    exit_fees = value * book.fee
    gross = np.where(is_long[:closed], value - size * p_in, size * p_in - value)
    pnl = gross - entry_fees[:closed] - exit_fees
    return_pct = pnl / (size * p_in) * 100.0
    sides = np.where(is_long, "long", "short").tolist()
    times_in, times_out = book.times[fill_in].tolist(), book.times[fill_out].tolist()
    sizes, entry_fees = sizes.tolist(), entry_fees.tolist()
    columns = (fill_in.tolist(), times_in, price_in.tolist(), sizes, entry_fees, fill_out.tolist(), times_out)
    rest = (price_out.tolist(), exit_fees.tolist(), repeat("signal"), pnl.tolist(), return_pct.tolist())
    book.trades.extend(map(Trade, sides, *columns, *rest))  # as many as closed (map stops at the shortest)
    if closed < len(fill_in):  # still open at the end: the engine closes it at the last close
        book.trade = Trade(sides[-1], int(fill_in[-1]), times_in[-1], float(price_in[-1]), sizes[-1], entry_fees[-1])
