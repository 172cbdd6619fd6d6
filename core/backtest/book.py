"""One run's money: the trades, the cash and the open position (Book), and the equity curve they make.

Fills, fees and cash follow docs/METRICS.md; engine._simulate and fast_path drive the same arithmetic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from core.strategies.contract import format_candle_time


@dataclass
class Trade:
    side: str
    entry_index: int
    entry_time_ms: int
    entry_price: float
    size: float
    entry_fee: float
    exit_index: int = -1
    exit_time_ms: int = 0
    exit_price: float = 0.0
    exit_fee: float = 0.0
    exit_reason: str = ""
    pnl: float = 0.0
    return_pct: float = 0.0

    @property
    def fees(self) -> float:
        return self.entry_fee + self.exit_fee

    def as_dict(self) -> dict:
        out = asdict(self)
        out["fees"] = self.fees
        out["entry_time"] = format_candle_time(self.entry_time_ms)
        out["exit_time"] = format_candle_time(self.exit_time_ms)
        return out


class Book:
    """Cash, the open position and the fills history of one run."""

    def __init__(self, cash: float, fee: float, slippage: float, times: np.ndarray):
        self.cash = cash
        self.fee = fee
        self.slip = slippage
        self.times = times
        self.trade: Trade | None = None
        self.trades: list[Trade] = []
        self.event_at: list[int] = []  # after each fill: its candle and the cash
        self.event_cash: list[float] = []

    def open(self, side: str, index: int, price: float, fraction: float) -> Trade:
        price = price * (1 + self.slip) if side == "long" else price * (1 - self.slip)
        notional = fraction * self.cash / (1 + self.fee)
        fee = notional * self.fee
        size = notional / price
        self.cash += -(notional + fee) if side == "long" else notional - fee
        self.trade = Trade(side, index, int(self.times[index]), price, size, fee)
        self.event_at.append(index)
        self.event_cash.append(self.cash)
        return self.trade

    def close(self, index: int, price: float, reason: str, slipped: bool = True) -> None:
        trade = self.trade
        assert trade is not None
        if slipped:
            price = price * (1 - self.slip) if trade.side == "long" else price * (1 + self.slip)
        value = trade.size * price
        fee = value * self.fee
        if trade.side == "long":
            self.cash += value - fee
            gross = value - trade.size * trade.entry_price
        else:
            self.cash -= value + fee
            gross = trade.size * trade.entry_price - value
        trade.exit_index, trade.exit_time_ms, trade.exit_price = index, int(self.times[index]), price
        trade.exit_fee, trade.exit_reason = fee, reason
        trade.pnl = gross - trade.entry_fee - fee
        trade.return_pct = trade.pnl / (trade.size * trade.entry_price) * 100.0
        self.trades.append(trade)
        self.event_at.append(index)
        self.event_cash.append(self.cash)
        self.trade = None

    def close_part(self, index: int, price: float, reason: str, size: float, slipped: bool = False) -> None:
        """Close `size` of the open position (a take-profit ladder's rung) as a trade of its own: the same entry,
        its share of the entry fee; the rest stays open."""
        trade = self.trade
        assert trade is not None and 0 < size < trade.size
        part = replace(trade, size=size, entry_fee=trade.entry_fee * size / trade.size)
        trade.size -= size
        trade.entry_fee -= part.entry_fee
        self.trade = part
        self.close(index, price, reason, slipped)
        self.trade = trade


def equity_curve(book: Book, n: int, close: np.ndarray, start_cash: float) -> tuple[np.ndarray, int]:
    """Mark-to-market at every close: the cash after the last fill at or before it, plus the holding."""
    held = np.zeros(n)
    if book.trades:  # one position at a time, in order: flat from the last exit to an entry, held to its exit
        bounds = np.array([(t.entry_index, t.exit_index) for t in book.trades], dtype=np.int64).ravel()
        sizes = [(0.0, t.size if t.side == "long" else -t.size) for t in book.trades]
        _ladder_holdings(book.trades, bounds, sizes)
        held = np.repeat(np.array(sizes).ravel(), np.diff(bounds, prepend=0))
        held = np.concatenate([held, np.zeros(n - len(held))])
    cash = np.full(n, start_cash)
    if book.event_at:  # each event's cash from its candle until the next event (the last of a candle wins)
        values = np.array([start_cash, *book.event_cash], dtype=np.float64)
        at = np.array([0, *book.event_at, n], dtype=np.int64)
        cash = np.repeat(values, at[1:] - at[:-1])
    return cash + held * close, int(np.count_nonzero(held))


def _ladder_holdings(trades: list[Trade], bounds: np.ndarray, sizes: list[tuple[float, float]]) -> None:
    """The partial exits of a ladder (trades sharing their entry) as one holding that shrinks at each exit: each
    such trade's span starts at the exit before it and holds its own size plus those of the exits after it."""
    for k in range(len(trades) - 2, -1, -1):
        if trades[k + 1].entry_index == trades[k].entry_index:
            bounds[2 * (k + 1)] = trades[k].exit_index
            sizes[k] = (0.0, sizes[k][1] + sizes[k + 1][1])
