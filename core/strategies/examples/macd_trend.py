"""MACD trend: follow MACD/signal crosses in the direction of the long EMA trend, with ATR exits."""

import ta

from core.strategies import Strategy, crossed_above, crossed_below


class MacdTrend(Strategy):
    params = {
        "fast": 12,
        "slow": 26,
        "signal": 9,
        "trend": 200,
        "allow_short": True,
        "atr_stop": 2.0,
        "atr_target": 4.0,
    }

    def init(self):
        close = self.data.close
        fast, slow = self.params["fast"], self.params["slow"]
        self.macd = self.indicator(ta.trend.macd, close, window_slow=slow, window_fast=fast)
        self.macd_signal = self.indicator(
            ta.trend.macd_signal, close, window_slow=slow, window_fast=fast, window_sign=self.params["signal"]
        )
        self.trend = self.indicator(ta.trend.ema_indicator, close, window=self.params["trend"])
        self.atr = self.indicator(ta.volatility.average_true_range, self.data.high, self.data.low, close, window=14)

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

    # position_size() is inherited: 1.0, the whole free balance.

    def stop_loss(self):
        # Called on entry; the side being entered is the one whose signal fires now.
        distance = self.params["atr_stop"] * self.atr[-1]
        return self.data.close[-1] - distance if self.should_long() else self.data.close[-1] + distance

    def take_profit(self):
        distance = self.params["atr_target"] * self.atr[-1]
        return self.data.close[-1] + distance if self.should_long() else self.data.close[-1] - distance
