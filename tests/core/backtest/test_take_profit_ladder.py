"""A strategy's take_profit_ladder() in backtests (core/backtest/engine.py): each rung closes its share of the
position when the candle's path reaches it, the stop closes what is left along the same path rule, each exit
is a trade of its own; the vectorised rest of a run (fast_path.py) leaves a ladder to the per-candle loop."""

import numpy as np
import pytest

from core.backtest.engine import BacktestSettings, run_backtest
from core.strategies import Strategy, crossed_above, crossed_below
from tests.core.backtest.test_engine import At, make_candles, random_walk


class Ladder(At):
    """At (enters at the close of candle `enter`), with a ladder of rungs (pct, size %) and an optional stop."""

    params = {**At.params, "leave": 99, "rungs": [[2, 50], [5, 50]]}

    def take_profit_ladder(self):
        return self.params["rungs"]


def trades_of(result):
    return [(t.exit_index, t.exit_reason, t.exit_price, t.size) for t in result.trades]


# Entry decided at the close of candle 1, filled at the open of candle 2 (100): 100 units of 10,000 cash.
OPENS = [100, 100, 100, 101, 104, 106]
HIGHS = [100, 100, 101, 103, 106, 107]
LOWS = [100, 100, 99, 100, 103, 105]
CLOSES = [100, 100, 101, 102, 105, 106]


def test_two_rungs_each_close_their_half_when_the_highs_reach_them():
    result = run_backtest(Ladder, make_candles(OPENS, HIGHS, LOWS, CLOSES), None, BacktestSettings(fee=0))
    assert result.status == "ok"
    # candle 3's high 103 reaches the first rung (102), candle 4's high 106 the second (105)
    assert trades_of(result) == [(3, "take_profit", 102, 50), (4, "take_profit", 105, 50)]
    assert [t.entry_index for t in result.trades] == [2, 2]
    assert [t.pnl for t in result.trades] == [pytest.approx(100), pytest.approx(250)]
    # marked to market: 100 units at 101, then 50 units at 102 beside 5,100 cash, then all cash
    assert result.equity.tolist() == pytest.approx([10_000, 10_000, 10_100, 10_200, 10_350, 10_350])
    assert result.metrics["num_trades"] == 2 and result.metrics["winning_trades"] == 2


def test_one_rung_then_the_stop_closes_the_rest():
    opens, highs = [100, 100, 100, 101, 102, 99], [100, 100, 101, 103, 102.5, 99]
    lows, closes = [100, 100, 99.5, 100, 97, 98], [100, 100, 101, 102, 99, 99]
    candles = make_candles(opens, highs, lows, closes)
    result = run_backtest(Ladder, candles, {"sl": 98.0}, BacktestSettings(fee=0.001))
    first, rest = result.trades
    assert (first.exit_index, first.exit_reason, first.exit_price) == (3, "take_profit", 102)
    assert (rest.exit_index, rest.exit_reason, rest.exit_price) == (4, "stop_loss", 98)  # the falling candle 4
    size = 10_000 / 1.001 / 100
    assert (first.size, rest.size) == (pytest.approx(size / 2), pytest.approx(size / 2))
    assert first.entry_fee + rest.entry_fee == pytest.approx(10_000 / 1.001 * 0.001)  # the entry's fee, shared
    assert first.pnl == pytest.approx(size / 2 * 2 - first.entry_fee - size / 2 * 102 * 0.001)
    assert rest.pnl == pytest.approx(-size / 2 * 2 - rest.entry_fee - size / 2 * 98 * 0.001)
    assert result.final_equity == pytest.approx(10_000 + first.pnl + rest.pnl)
    assert result.metrics["winning_trades"] == 1 and result.metrics["losing_trades"] == 1


@pytest.mark.parametrize(
    ("close", "expected"),
    [
        (100, [(3, "take_profit", 102, 50), (3, "take_profit", 105, 50)]),  # falling: the high first, both rungs
        (102, [(3, "stop_loss", 98, 100)]),  # rising: the low first, the stop takes all
    ],
)
def test_a_candle_reaching_rungs_and_stop_follows_its_path(close, expected):
    opens, highs = [100, 100, 100, 101, 100], [100, 100, 101, 106, 100]
    lows, closes = [100, 100, 99, 97, 100], [100, 100, 101, close, 100]
    result = run_backtest(Ladder, make_candles(opens, highs, lows, closes), {"sl": 98.0}, BacktestSettings(fee=0))
    assert trades_of(result) == expected


def test_a_gap_over_a_rung_fills_it_at_the_open_and_the_last_rung_closes_the_rest():
    opens, highs = [100, 100, 100, 103, 104], [100, 100, 101, 104, 110]
    lows, closes = [100, 100, 99, 103, 104], [100, 100, 101, 104, 109]
    rungs = [[5, 20], [2, 30], [8, 50]]  # given in any order: the nearest rung fills first
    result = run_backtest(Ladder, make_candles(opens, highs, lows, closes), {"rungs": rungs}, BacktestSettings(fee=0))
    assert trades_of(result) == [
        (3, "take_profit", 103, 30),
        (4, "take_profit", 105, 20),
        (4, "take_profit", 108, pytest.approx(50)),
    ]


def test_a_short_ladder_takes_profit_below_the_entry():
    opens, highs = [100, 100, 100, 99, 96], [100, 100, 101, 99, 97]
    lows, closes = [100, 100, 99, 97, 94], [100, 100, 99, 98, 95]
    result = run_backtest(
        Ladder, make_candles(opens, highs, lows, closes), {"short": True, "sl": 103.0}, BacktestSettings(fee=0)
    )
    assert trades_of(result) == [(3, "take_profit", 98, 50), (4, "take_profit", 95, 50)]
    assert [t.pnl for t in result.trades] == [pytest.approx(100), pytest.approx(250)]


def test_a_signal_exit_closes_what_the_rungs_left():
    result = run_backtest(Ladder, make_candles(OPENS, HIGHS, LOWS, CLOSES), {"leave": 3}, BacktestSettings(fee=0))
    assert trades_of(result) == [(3, "take_profit", 102, 50), (4, "signal", 104, 50)]


class CrossLadder(Strategy):
    """Vectorisable signals, a constant ladder and stop: without them the run would be handed to fast_path."""

    params = {"fast": 3, "slow": 8}

    def init(self):
        self.fast = self.indicator(lambda c, w: c.rolling(w).mean(), self.data.close, self.params["fast"])
        self.slow = self.indicator(lambda c, w: c.rolling(w).mean(), self.data.close, self.params["slow"])

    def should_long(self):
        return crossed_above(self.fast, self.slow)

    def should_short(self):
        return crossed_below(self.fast, self.slow)

    def should_exit(self):
        return crossed_below(self.fast, self.slow) | crossed_above(self.fast, self.slow)

    def take_profit_ladder(self):
        return [(0.3, 40), (0.6, 30), (1.0, 30)]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_vectorised_run_leaves_a_ladder_to_the_per_candle_loop(seed):
    candles = random_walk(3000, seed)
    fast = run_backtest(CrossLadder, candles, None, BacktestSettings(slippage_bps=5))
    slow = run_backtest(CrossLadder, candles, None, BacktestSettings(slippage_bps=5, vectorize=False))
    assert fast.status == slow.status == "ok"
    assert {"take_profit", "signal"} <= {t.exit_reason for t in fast.trades}
    assert [t.as_dict() for t in fast.trades] == [t.as_dict() for t in slow.trades]
    assert np.array_equal(fast.equity, slow.equity)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"rungs": [[2, 50], [5, 40]]}, "rung sizes adding up to 100 (%), not 90"),
        ({"rungs": [[2, 100]]}, "a list of 2 to 10 rungs"),
        ({"rungs": [[2, 10]] * 11}, "a list of 2 to 10 rungs"),
        ({"rungs": [[-2, 50], [5, 50]]}, "rung 1's pct_above_entry is -2"),
        ({"rungs": [[2, 50], [5]]}, "rung 2 is not a pair"),
        ({"rungs": "2:50, 5:50"}, "a list of 2 to 10 rungs"),
        ({"tp": 120.0}, "take_profit() must return None when take_profit_ladder() returns rungs"),
    ],
)
def test_a_bad_ladder_fails_the_run_naming_the_method_and_candle(params, says):
    result = run_backtest(Ladder, make_candles(OPENS, HIGHS, LOWS, CLOSES), params)
    assert result.status == "failed" and result.error["method"] == "take_profit_ladder"
    assert says in result.error["text"]


class LadderAndTrail(Ladder):
    def trailing_stop(self):
        return 2.0


def test_a_ladder_beside_a_trailing_stop_fails_the_run():
    result = run_backtest(LadderAndTrail, make_candles(OPENS, HIGHS, LOWS, CLOSES))
    assert result.status == "failed" and result.error["method"] == "take_profit_ladder"
    assert "trailing_stop() must return None" in result.error["text"]
