"""20-bar breakout with a signal-streak counter and an ATR stop (issue 21; the bench's stateful case).

Ordinary Python as a trader writes it: a helper function, state on `self` updated with `+=` (so
should_long runs per candle).
Enter long after `streak` consecutive closes above the previous 20-bar high; stop `atr_mult` ATRs below
the entry close; exit on a close below the previous 10-bar low.
"""

import numpy as np
import pandas as pd

from core.strategies import Strategy


def average_true_range(high, low, close, window):
    """Wilder's ATR: the true range smoothed with alpha 1/window."""
    high, low, close = pd.Series(high), pd.Series(low), pd.Series(close)
    previous = close.shift(1)
    true_range = np.maximum(high - low, np.maximum((high - previous).abs(), (low - previous).abs()))
    return true_range.ewm(alpha=1 / window, adjust=False, min_periods=window).mean()


class BreakoutStreak(Strategy):
    params = {"lookback": 20, "exit_lookback": 10, "streak": 2, "atr_window": 14, "atr_mult": 2.0}

    def init(self):
        high, low = pd.Series(self.data.high), pd.Series(self.data.low)
        self.upper = self.indicator(lambda: high.rolling(self.params["lookback"]).max().shift(1))
        self.lower = self.indicator(lambda: low.rolling(self.params["exit_lookback"]).min().shift(1))
        self.atr = self.indicator(
            average_true_range,
            self.data.high,
            self.data.low,
            self.data.close,
            self.params["atr_window"],
        )
        self.streak = 0

    def should_long(self) -> bool:
        if self.data.close[-1] > self.upper[-1]:
            self.streak += 1
        else:
            self.streak = 0
        return self.streak >= self.params["streak"]

    def should_exit(self) -> bool:
        return self.data.close[-1] < self.lower[-1]

    def stop_loss(self):
        return self.data.close[-1] - self.params["atr_mult"] * self.atr[-1]
