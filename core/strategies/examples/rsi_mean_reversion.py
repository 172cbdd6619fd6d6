"""RSI mean reversion: buy when RSI falls below `oversold`, sell when it recovers above `exit_level`."""

import ta

from core.strategies import Strategy


class RsiMeanReversion(Strategy):
    params = {"window": 14, "oversold": 30.0, "exit_level": 55.0, "stop_pct": 0.05}

    def init(self):
        self.rsi = self.indicator(ta.momentum.rsi, self.data.close, window=self.params["window"])

    def should_long(self) -> bool:
        return self.rsi[-1] < self.params["oversold"]

    def should_short(self) -> bool:
        return False

    def should_exit(self) -> bool:
        return self.rsi[-1] > self.params["exit_level"]

    def position_size(self) -> float:
        return 0.5

    def stop_loss(self):
        # A mean-reversion entry that keeps falling is wrong: cut it at a fixed distance.
        return self.data.close[-1] * (1 - self.params["stop_pct"])

    def take_profit(self):
        return None
