"""MACD trend: follow MACD/signal crosses, only in the direction of the long EMA trend."""

import ta

from core.strategies import Strategy, crossed_above, crossed_below


class MacdTrend(Strategy):
    params = {"fast": 12, "slow": 26, "signal": 9, "trend": 200, "allow_short": True}

    def init(self):
        close = self.data.close
        fast, slow = self.params["fast"], self.params["slow"]
        self.macd = self.indicator(ta.trend.macd, close, window_slow=slow, window_fast=fast)
        self.macd_signal = self.indicator(
            ta.trend.macd_signal, close, window_slow=slow, window_fast=fast, window_sign=self.params["signal"]
        )
        self.trend = self.indicator(ta.trend.ema_indicator, close, window=self.params["trend"])

    def should_long(self) -> bool:
        uptrend = self.data.close[-1] > self.trend[-1]
        return crossed_above(self.macd, self.macd_signal) and uptrend

    def should_short(self) -> bool:
        downtrend = self.data.close[-1] < self.trend[-1]
        return self.params["allow_short"] and crossed_below(self.macd, self.macd_signal) and downtrend

    def should_exit(self) -> bool:
        if self.position.is_long:
            return crossed_below(self.macd, self.macd_signal)
        return crossed_above(self.macd, self.macd_signal)

    def position_size(self) -> float:
        return 1.0

    def stop_loss(self):
        return None

    def take_profit(self):
        return None
