"""A strategy's trailing_stop() in backtests (core/backtest/engine.py): the stop trails the best price since
the entry, each candle checked against the level from the extreme before it, a gap filling at the open; the
vectorised rest of a run (fast_path.py) leaves a trailing stop to the per-candle loop."""

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


# Entry decided at the close of candle 1, filled at the open of candle 2 (100).
OPENS = [100, 100, 100, 104, 108, 106, 100]
HIGHS = [100, 100, 105, 110, 109, 107, 100]
LOWS = [100, 100, 99, 103, 104, 97, 99]


def test_a_long_trailing_stop_follows_the_highs_and_fills_at_its_level():
    result = run_backtest(Trails, make_candles(OPENS, HIGHS, LOWS), None, BacktestSettings(fee=0))
    (trade,) = result.trades
    # candle 2: level 100 * 0.95 = 95 (low 99: held), best 105; candle 3: level 99.75 (low 103: held), best 110;
    # candle 3's own high would put the level at 104.5 above its low 103, but a candle's high is not assumed to
    # come first: candle 4 is the one checked against 104.5 (low 104), filled at the level.
    assert (trade.entry_index, trade.entry_price, trade.exit_index, trade.exit_reason) == (2, 100, 4, "trailing_stop")
    assert trade.exit_price == pytest.approx(104.5)
    assert trade.pnl == pytest.approx(trade.size * 4.5)


def test_a_gap_through_the_trail_fills_at_the_open_with_slippage():
    opens = [*OPENS[:4], 101, 100, 100]  # candle 4 opens at 101, below its level 104.5
    highs = [*HIGHS[:4], 102, 101, 100]
    lows = [*LOWS[:4], 100, 99, 99]
    result = run_backtest(Trails, make_candles(opens, highs, lows), None, BacktestSettings(fee=0, slippage_bps=10))
    (trade,) = result.trades
    assert (trade.exit_index, trade.exit_reason) == (4, "trailing_stop")
    assert trade.exit_price == pytest.approx(101 * 0.999)  # a stop is a market order: it slips


def test_a_short_trailing_stop_follows_the_lows():
    opens = [100, 100, 100, 96, 92, 95, 100]
    highs = [100, 100, 101, 97, 96.5, 96, 100]
    lows = [100, 100, 95, 90, 91, 94, 99]
    result = run_backtest(Trails, make_candles(opens, highs, lows), {"short": True}, BacktestSettings(fee=0))
    (trade,) = result.trades
    # candle 2: level 105 (high 101), best 95; candle 3: level 99.75 (high 97), best 90; candle 4: level 94.5,
    # high 96.5: filled at the level.
    assert (trade.side, trade.exit_index, trade.exit_reason) == ("short", 4, "trailing_stop")
    assert trade.exit_price == pytest.approx(94.5)


def test_a_signal_exit_before_the_trail_is_reached_closes_at_the_next_open():
    result = run_backtest(Trails, make_candles(OPENS, HIGHS, LOWS), {"leave": 2}, BacktestSettings(fee=0))
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
    result = run_backtest(Trails, make_candles(OPENS, HIGHS, LOWS), params)
    assert result.status == "failed" and result.error["method"] == "trailing_stop"
    assert says in result.error["text"]


def test_the_contracts_trail_range_is_the_venues():
    assert tuple(float(x) for x in TRAIL_PCT_RANGE) == (TRAIL_PCT_MIN, TRAIL_PCT_MAX)
