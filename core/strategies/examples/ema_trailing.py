"""EMA trend with a trailing stop: long when the close crosses above its EMA; the exit is the trailing stop,
which follows the best price since the entry and sells once the price falls `trail_pct` % from it."""

import ta

from core.strategies import Strategy, crossed_above


class EmaTrailing(Strategy):
    params = {"ema": 50, "trail_pct": 3.0}

    def init(self):
        self.ema = self.indicator(ta.trend.ema_indicator, self.data.close, window=self.params["ema"])

    def should_long(self) -> bool:
        return crossed_above(self.data.close, self.ema)

    def should_exit(self) -> bool:
        return False  # the trailing stop exits

    def position_size(self) -> float:
        return 1.0

    def trailing_stop(self):
        # A trail in % (0.1 to 20), or None. With a trail, stop_loss() and take_profit() stay None: at a spot
        # venue a trailing stop is the position's only exit order.
        return self.params["trail_pct"]
