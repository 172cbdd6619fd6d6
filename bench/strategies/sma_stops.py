"""SMA cross with a fixed stop-loss and take-profit around the entry close (bench parity's second strategy)."""

import ta

from core.strategies import Strategy, crossed_above, crossed_below


class SmaStops(Strategy):
    params = {"fast": 10, "slow": 30, "stop_pct": 0.2, "target_pct": 0.3}

    def init(self):
        self.fast = self.indicator(ta.trend.sma_indicator, self.data.close, window=self.params["fast"])
        self.slow = self.indicator(ta.trend.sma_indicator, self.data.close, window=self.params["slow"])

    def should_long(self) -> bool:
        return crossed_above(self.fast, self.slow)

    def should_exit(self) -> bool:
        return crossed_below(self.fast, self.slow)

    def position_size(self) -> float:
        return 0.95

    def stop_loss(self):
        return self.data.close[-1] * (1 - self.params["stop_pct"] / 100)

    def take_profit(self):
        return self.data.close[-1] * (1 + self.params["target_pct"] / 100)
