"""Bollinger breakout: buy when the close breaks above the upper band, sell back at the middle band."""

import ta

from core.strategies import Strategy, crossed_above, crossed_below


class BollingerBreakout(Strategy):
    params = {"window": 20, "deviations": 2.0, "take_profit_pct": 0.06}

    def init(self):
        close = self.data.close
        window = self.params["window"]
        self.upper = self.indicator(
            ta.volatility.bollinger_hband, close, window=window, window_dev=self.params["deviations"]
        )
        self.middle = self.indicator(ta.volatility.bollinger_mavg, close, window=window)

    def should_long(self) -> bool:
        return crossed_above(self.data.close, self.upper)

    def should_short(self) -> bool:
        return False

    def should_exit(self) -> bool:
        return crossed_below(self.data.close, self.middle)

    def position_size(self) -> float:
        return 1.0

    def stop_loss(self):
        # A breakout that falls back through the middle band has failed.
        return self.middle[-1]

    def take_profit(self):
        return self.data.close[-1] * (1 + self.params["take_profit_pct"])
