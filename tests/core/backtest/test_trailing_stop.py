"""A strategy's trailing_stop() in backtests (core/backtest/engine.py): the stop trails the best price since
the entry along each candle's path (the low first on a rising candle, the high first on a falling one), a gap
filling at the open; the vectorised rest of a run (fast_path.py) leaves a trailing stop to the per-candle loop."""

import numpy as np
import pytest

from core.backtest.engine import BacktestSettings, run_backtest
from core.exchanges.models import TRAIL_PCT_RANGE
from core.strategies import Strategy, crossed_above, crossed_below
from core.strategies.contract import TRAIL_PCT_MAX, TRAIL_PCT_MIN
from tests.core.backtest.test_engine import At, make_candles, random_walk


class Trails(At):
    """At (enters at the close of candle `enter`, exits at `leave`), with a trailing stop of `trail` %."""

    params = {**At.params, "leave": 99, "trail": 5.0}

    def trailing_stop(self):
        return self.params["trail"] or None


# Entry decided at the close of candle 1, filled at the open of candle 2 (100); a 5 % trail.
OPENS = [100, 100, 100, 104, 108, 108, 100]
HIGHS = [100, 100, 105, 110, 112, 109, 100]
LOWS = [100, 100, 99, 103, 105, 100, 99]
CLOSES = [100, 100, 104, 108, 106, 101, 100]


def test_a_long_trailing_stop_follows_the_path_of_each_candle():
    result = run_backtest(Trails, make_candles(OPENS, HIGHS, LOWS, CLOSES), None, BacktestSettings(fee=0))
    (trade,) = result.trades
    # candle 2 (rising: the low first): stop 95 (low 99: held), the high 105 moves it to 99.75 (close 104: held);
    # candle 3 (rising): its low 103 meets 99.75 before its high 110 moves the stop to 104.5 (close 108: held);
    # candle 4 (falling: the high first): 112 moves the stop to 106.4, then the low 105 crosses it.
    assert (trade.entry_index, trade.entry_price, trade.exit_index, trade.exit_reason) == (2, 100, 4, "trailing_stop")
    assert trade.exit_price == pytest.approx(106.4)
    assert trade.pnl == pytest.approx(trade.size * 6.4)


def test_a_rising_candle_whose_close_falls_below_the_stop_its_high_raised_exits_at_that_stop():
    highs, closes = [*HIGHS[:4], 120, *HIGHS[5:]], [*CLOSES[:4], 112, *CLOSES[5:]]  # candle 4: 108 -> 105 -> 120 -> 112
    result = run_backtest(Trails, make_candles(OPENS, highs, LOWS, closes), None, BacktestSettings(fee=0))
    (trade,) = result.trades
    assert (trade.exit_index, trade.exit_reason) == (4, "trailing_stop")
    assert trade.exit_price == pytest.approx(114)  # 120 less 5 %


def test_a_gap_through_the_trail_fills_at_the_open_with_slippage():
    opens = [*OPENS[:4], 101, 100, 100]  # candle 4 opens at 101, below the stop 104.5
    highs, lows, closes = [*HIGHS[:4], 102, 101, 100], [*LOWS[:4], 100, 99, 99], [*CLOSES[:4], 101, 100, 100]
    result = run_backtest(
        Trails, make_candles(opens, highs, lows, closes), None, BacktestSettings(fee=0, slippage_bps=10)
    )
    (trade,) = result.trades
    assert (trade.exit_index, trade.exit_reason) == (4, "trailing_stop")
    assert trade.exit_price == pytest.approx(101 * 0.999)  # a stop is a market order: it slips


def test_a_short_trailing_stop_follows_the_lows_along_the_path():
    opens = [100, 100, 100, 96, 92, 92, 100]
    highs = [100, 100, 101, 97, 95, 100, 100]
    lows = [100, 100, 95, 90, 88, 91, 99]
    closes = [100, 100, 96, 92, 94, 99, 100]
    result = run_backtest(Trails, make_candles(opens, highs, lows, closes), {"short": True}, BacktestSettings(fee=0))
    (trade,) = result.trades
    # candle 2 (falling: the high first): 101 under the stop 105, the low 95 moves it to 99.75 (close 96: held);
    # candle 3 (falling): 97 under 99.75, the low 90 moves it to 94.5; candle 4 (rising: the low first): 88
    # moves it to 92.4, then the high 95 crosses it.
    assert (trade.side, trade.exit_index, trade.exit_reason) == ("short", 4, "trailing_stop")
    assert trade.exit_price == pytest.approx(92.4)


def test_a_signal_exit_before_the_trail_is_reached_closes_at_the_next_open():
    result = run_backtest(Trails, make_candles(OPENS, HIGHS, LOWS, CLOSES), {"leave": 2}, BacktestSettings(fee=0))
    (trade,) = result.trades
    assert (trade.exit_index, trade.exit_price, trade.exit_reason) == (3, 104, "signal")


class CrossTrail(Strategy):
    """Vectorisable signals and a constant trail: without the trail the run would be handed to fast_path."""

    params = {"fast": 3, "slow": 8, "trail": 1.0}

    def init(self):
        self.fast = self.indicator(lambda c, w: c.rolling(w).mean(), self.data.close, self.params["fast"])
        self.slow = self.indicator(lambda c, w: c.rolling(w).mean(), self.data.close, self.params["slow"])

    def should_long(self):
        return crossed_above(self.fast, self.slow)

    def should_short(self):
        return crossed_below(self.fast, self.slow)

    def should_exit(self):
        return crossed_below(self.fast, self.slow) | crossed_above(self.fast, self.slow)

    def trailing_stop(self):
        return 1.0


@pytest.mark.parametrize("seed", [1, 2])
def test_the_vectorised_run_leaves_a_trailing_stop_to_the_per_candle_loop(seed):
    candles = random_walk(3000, seed)
    fast = run_backtest(CrossTrail, candles, None, BacktestSettings(slippage_bps=5))
    slow = run_backtest(CrossTrail, candles, None, BacktestSettings(slippage_bps=5, vectorize=False))
    assert fast.status == slow.status == "ok"
    reasons = {t.exit_reason for t in fast.trades}
    assert {"trailing_stop", "signal"} <= reasons
    assert [t.as_dict() for t in fast.trades] == [t.as_dict() for t in slow.trades]
    assert np.array_equal(fast.equity, slow.equity)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"trail": 25.0}, "trailing_stop() at candle"),
        ({"trail": 0.05}, "must return a trail in % between 0.1 and 20, or None, got float 0.05"),
        ({"trail": 2.0, "sl": 90.0}, "stop_loss() must return None when trailing_stop() returns a trail"),
        ({"trail": 2.0, "tp": 120.0}, "take_profit() must return None when trailing_stop() returns a trail"),
    ],
)
def test_a_bad_trail_fails_the_run_naming_the_method_and_candle(params, says):
    result = run_backtest(Trails, make_candles(OPENS, HIGHS, LOWS, CLOSES), params)
    assert result.status == "failed" and result.error["method"] == "trailing_stop"
    assert says in result.error["text"]


def test_the_contracts_trail_range_is_the_venues():
    assert tuple(float(x) for x in TRAIL_PCT_RANGE) == (TRAIL_PCT_MIN, TRAIL_PCT_MAX)
