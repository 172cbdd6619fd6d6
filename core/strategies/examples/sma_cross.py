"""SMA cross: long when the fast average crosses above the slow one, flat when it crosses back."""

import ta

from core.strategies import Strategy, crossed_above, crossed_below


class SmaCross(Strategy):
    params = {"fast": 10, "slow": 30}

    def init(self):
        self.fast = self.indicator(ta.trend.sma_indicator, self.data.close, window=self.params["fast"])
        self.slow = self.indicator(ta.trend.sma_indicator, self.data.close, window=self.params["slow"])

    def should_long(self) -> bool:
        return crossed_above(self.fast, self.slow)

    def should_short(self) -> bool:
        return False

    def should_exit(self) -> bool:
        return crossed_below(self.fast, self.slow)

    def position_size(self) -> float:
        return 1.0

    def stop_loss(self):
        return None

    def take_profit(self):
        return None
