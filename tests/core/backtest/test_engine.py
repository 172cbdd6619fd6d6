import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.backtest.engine import BacktestInputError, BacktestSettings, run_backtest, run_job
from core.strategies import ParamError, Strategy, crossed_above, crossed_below
from core.strategies.examples.sma_cross import SmaCross

T0 = 1_700_000_000_000
MINUTE = 60_000


def make_candles(opens, highs=None, lows=None, closes=None, step=MINUTE) -> pd.DataFrame:
    opens = np.asarray(opens, dtype="float64")
    closes = opens if closes is None else np.asarray(closes, dtype="float64")
    highs = np.maximum(opens, closes) if highs is None else np.asarray(highs, dtype="float64")
    lows = np.minimum(opens, closes) if lows is None else np.asarray(lows, dtype="float64")
    return pd.DataFrame(
        {
            "open_time": T0 + step * np.arange(len(opens)),
            "open": opens,
            "high": highs,
            "low": lows,
            "close": closes,
            "volume": np.ones(len(opens)),
        }
    )


def random_walk(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.concatenate([[100.0], closes[:-1]])
    spread = np.abs(rng.normal(0, 0.004, n)) * closes
    return make_candles(opens, np.maximum(opens, closes) + spread, np.minimum(opens, closes) - spread, closes)


class At(Strategy):
    """Enters at the close of candle `enter` (long or short), exits at the close of candle `leave`."""

    params = {"enter": 1, "leave": 3, "short": False, "size": 1.0, "sl": 0.0, "tp": 0.0}

    def should_long(self):
        return len(self.data.close) - 1 == self.params["enter"] and not self.params["short"]

    def should_short(self):
        return len(self.data.close) - 1 == self.params["enter"] and self.params["short"]

    def should_exit(self):
        return len(self.data.close) - 1 == self.params["leave"]

    def position_size(self):
        return self.params["size"]

    def stop_loss(self):
        return self.params["sl"] or None

    def take_profit(self):
        return self.params["tp"] or None


def test_long_fills_at_next_open_with_fees_and_slippage():
    candles = make_candles([100, 100, 110, 120, 130, 140], closes=[100, 105, 115, 125, 135, 140])
    result = run_backtest(At, candles, {"size": 0.5}, BacktestSettings(fee=0.001, slippage_bps=10, cash=10_000))
    (trade,) = result.trades
    assert (trade.side, trade.entry_index, trade.exit_index, trade.exit_reason) == ("long", 2, 4, "signal")
    entry, exit_ = 110 * 1.001, 130 * 0.999
    notional = 0.5 * 10_000 / 1.001
    assert trade.entry_price == pytest.approx(entry)
    assert trade.size == pytest.approx(notional / entry)
    assert trade.entry_fee == pytest.approx(notional * 0.001)
    assert trade.exit_fee == pytest.approx(trade.size * exit_ * 0.001)
    assert trade.pnl == pytest.approx(trade.size * (exit_ - entry) - trade.fees)
    assert result.final_equity == pytest.approx(10_000 + trade.pnl)
    # marked to market at each close while held, flat cash before and after
    assert result.equity[1] == 10_000
    assert result.equity[3] == pytest.approx(10_000 - notional - trade.entry_fee + trade.size * 125)
    assert result.metrics["exposure_pct"] == pytest.approx(2 / 6 * 100)


def test_short_profits_when_price_falls():
    candles = make_candles([100, 100, 90, 80, 70], closes=[100, 95, 85, 75, 70])
    result = run_backtest(At, candles, {"short": True, "leave": 2}, BacktestSettings(fee=0.0))
    (trade,) = result.trades
    assert (trade.side, trade.entry_price, trade.exit_price) == ("short", 90, 80)
    assert trade.pnl == pytest.approx(trade.size * 10)
    assert result.final_equity == pytest.approx(10_000 * (1 + 10 / 90))


def test_stop_loss_and_take_profit_intrabar_worse_case_and_gaps():
    opens = [100, 100, 100, 100, 100]
    # candle 2 touches both 95 and 105: the stop wins
    both = make_candles(opens, highs=[100, 100, 106, 100, 100], lows=[100, 100, 94, 100, 100])
    params = {"sl": 95.0, "tp": 105.0, "leave": 99}
    (trade,) = run_backtest(At, both, params, BacktestSettings(fee=0)).trades
    assert (trade.exit_index, trade.exit_price, trade.exit_reason) == (2, 95.0, "stop_loss")
    only_tp = make_candles(opens, highs=[100, 100, 101, 107, 100], lows=[100, 100, 99, 99, 100])
    (trade,) = run_backtest(At, only_tp, params, BacktestSettings(fee=0)).trades
    assert (trade.exit_index, trade.exit_price, trade.exit_reason) == (3, 105.0, "take_profit")
    gap_down = make_candles([100, 100, 100, 90, 90], lows=[100, 100, 99, 88, 90], closes=[100, 100, 100, 90, 90])
    (trade,) = run_backtest(At, gap_down, params, BacktestSettings(fee=0)).trades
    assert (trade.exit_index, trade.exit_price) == (3, 90.0)  # gapped through the stop: filled at the open


def test_open_position_is_closed_at_the_last_close():
    candles = make_candles([100, 100, 110, 120], closes=[100, 105, 115, 125])
    (trade,) = run_backtest(At, candles, {"leave": 99}, BacktestSettings(fee=0)).trades
    assert (trade.exit_index, trade.exit_price, trade.exit_reason) == (3, 125.0, "end_of_data")


class LongShort(Strategy):
    params = {"fast": 3, "slow": 8}

    def init(self):
        self.fast = self.indicator(lambda c, w: c.rolling(w).mean(), self.data.close, self.params["fast"])
        self.slow = self.indicator(lambda c, w: c.rolling(w).mean(), self.data.close, self.params["slow"])

    def should_long(self):
        return crossed_above(self.fast, self.slow)

    def should_short(self):
        return crossed_below(self.fast, self.slow)

    def should_exit(self):
        return crossed_above(self.fast, self.slow) | crossed_below(self.fast, self.slow)

    def stop_loss(self):
        return float(self.data.close[-1]) * (0.97 if self.fast[-1] > self.slow[-1] else 1.03)


class Stateful(SmaCross):
    def init(self):
        super().init()
        self.calls = 0

    def should_exit(self):
        self.calls += 1  # state written per candle: the engine must not trust vectorized answers
        return crossed_below(self.fast, self.slow) or self.calls % 50 == 0


class Toggles(SmaCross):
    """should_long looks pure but reads a flag that should_short flips: caught at run time."""

    def init(self):
        super().init()
        self.armed = True

    def should_long(self):
        return crossed_above(self.fast, self.slow) & self.armed

    def should_short(self):
        self.armed = not self.armed
        return False


class UsesPosition(SmaCross):
    def should_exit(self):
        return crossed_below(self.fast, self.slow) or self.data.close[-1] < self.position.entry_price * 0.99


def trade_rows(result):
    return [t.as_dict() for t in result.trades]


@pytest.mark.parametrize("strategy", [SmaCross, LongShort, Stateful, Toggles, UsesPosition])
@pytest.mark.parametrize("seed", [1, 2])
def test_vectorized_run_equals_per_candle_run(strategy, seed):
    candles = random_walk(3000, seed)
    fast = run_backtest(strategy, candles, None, BacktestSettings(slippage_bps=5))
    slow = run_backtest(strategy, candles, None, BacktestSettings(slippage_bps=5, vectorize=False))
    assert fast.status == slow.status == "ok"
    assert len(fast.trades) > 5
    assert trade_rows(fast) == trade_rows(slow)
    assert np.array_equal(fast.equity, slow.equity)
    assert fast.metrics == slow.metrics


def test_evaluation_says_what_ran_per_candle():
    candles = random_walk(500, 3)
    assert set(run_backtest(SmaCross, candles).evaluation.values()) == {"vectorized"}
    assert run_backtest(UsesPosition, candles).evaluation["should_exit"].startswith("per candle")
    assert run_backtest(Stateful, candles).evaluation["should_exit"].startswith("per candle")
    assert run_backtest(Toggles, candles).evaluation["should_long"] == "per candle: strategy writes state"


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(50, 390), vectorize=st.booleans())
def test_changing_future_candles_never_changes_past_decisions(seed, cut, vectorize):
    candles = random_walk(400, seed)
    future = candles.copy()
    rng = np.random.default_rng(seed + 1)
    scale = rng.uniform(0.5, 1.5, len(candles) - cut)
    for column in ("open", "high", "low", "close"):
        future.loc[cut:, column] = future.loc[cut:, column].to_numpy() * scale
    runs = [run_backtest(LongShort, c, None, BacktestSettings(vectorize=vectorize)) for c in (candles, future)]
    # every fill up to and including the open of candle `cut` was decided at a close before it
    past = [[t for t in r.trades if t.exit_index < cut and t.exit_reason != "end_of_data"] for r in runs]
    assert [t.as_dict() for t in past[0]] == [t.as_dict() for t in past[1]]
    entries = [[(t.entry_index, t.side) for t in r.trades if t.entry_index <= cut] for r in runs]
    assert entries[0] == entries[1]
    assert np.array_equal(runs[0].equity[:cut], runs[1].equity[:cut])


def test_strategy_failing_mid_run_gives_a_failed_result_with_where():
    class Fails(Strategy):
        def should_long(self):
            if len(self.data.close) == 7:
                raise RuntimeError("boom")
            return False

    result = run_backtest(Fails, random_walk(20, 1))
    assert result.status == "failed"
    assert result.error["method"] == "should_long"
    assert result.error["candle_time_ms"] == T0 + 6 * MINUTE
    assert result.error["line"] is not None and "boom" in result.error["message"]


def test_absurd_parameters_and_settings_are_refused():
    candles = random_walk(100, 1)
    with pytest.raises(ParamError):
        run_backtest(SmaCross, candles, {"fast": "ten"})
    init_failure = run_backtest(SmaCross, candles, {"fast": -5})
    assert init_failure.status == "failed" and init_failure.error["method"] == "init"
    for bad in (
        BacktestSettings(fee=0.5),
        BacktestSettings(fee=-0.001),
        BacktestSettings(cash=0),
        BacktestSettings(cash=float("inf")),
        BacktestSettings(slippage_bps=-1),
        BacktestSettings(start_ms=T0 + 10 * MINUTE, end_ms=T0),
    ):
        with pytest.raises(BacktestInputError):
            run_backtest(SmaCross, candles, None, bad)


def test_bad_candles_are_refused():
    candles = random_walk(50, 1)
    with pytest.raises(BacktestInputError, match="no candles"):
        run_backtest(SmaCross, candles.iloc[:0])
    with pytest.raises(BacktestInputError, match="out of order"):
        run_backtest(SmaCross, candles.iloc[::-1].reset_index(drop=True))
    with pytest.raises(BacktestInputError, match="no candles between"):
        run_backtest(SmaCross, candles, None, BacktestSettings(start_ms=T0 + 10**9))
    with pytest.raises(BacktestInputError, match="lack column"):
        run_backtest(SmaCross, candles.drop(columns=["volume"]))


def test_gaps_are_reported_and_the_run_continues():
    candles = random_walk(300, 4).drop(index=range(100, 110)).reset_index(drop=True)
    result = run_backtest(SmaCross, candles)
    assert result.status == "ok"
    assert [(g.missing, g.last_before_ms) for g in result.gaps] == [(10, T0 + 99 * MINUTE)]


def test_date_range_selects_candles():
    candles = random_walk(300, 5)
    result = run_backtest(
        SmaCross, candles, None, BacktestSettings(start_ms=T0 + 100 * MINUTE, end_ms=T0 + 199 * MINUTE)
    )
    assert len(result.times_ms) == 100 and result.times_ms[0] == T0 + 100 * MINUTE


def test_run_job_takes_column_lists_and_returns_json_able_results():
    import json

    candles = random_walk(400, 6)
    payload = {"candles": {c: candles[c].tolist() for c in candles.columns}, "params": {"fast": "5"}, "fee": 0.002}
    out = run_job(SmaCross, payload)
    json.dumps(out)
    direct = run_backtest(SmaCross, candles, {"fast": 5}, BacktestSettings(fee=0.002))
    assert out["status"] == "ok" and out["params"] == {"fast": 5, "slow": 30}
    assert out["final_equity"] == direct.final_equity
    assert len(out["trades"]) == len(direct.trades)
    bad = run_job(SmaCross, {"candles": {"open_time": []}})
    assert bad["status"] == "failed" and "lack column" in bad["error"]["message"]
    assert run_job(SmaCross, {**payload, "params": {"nope": 1}})["error"]["kind"] == "params"


def test_when_one_candle_touches_both_levels_its_path_decides_which_fills():
    opens = [100, 100, 100, 100, 100]
    params = {"sl": 95.0, "tp": 105.0, "leave": 99}
    # a falling candle walks open -> high -> low -> close: the target is reached first
    falling = make_candles(opens, highs=[100, 100, 106, 100, 100], lows=[100, 100, 94, 100, 100],
                           closes=[100, 100, 97, 100, 100])  # fmt: skip
    (trade,) = run_backtest(At, falling, params, BacktestSettings(fee=0)).trades
    assert (trade.exit_index, trade.exit_price, trade.exit_reason) == (2, 105.0, "take_profit")
    # a rising one walks open -> low -> high -> close: the stop first
    rising = make_candles(opens, highs=[100, 100, 106, 100, 100], lows=[100, 100, 94, 100, 100],
                          closes=[100, 100, 103, 100, 100])  # fmt: skip
    (trade,) = run_backtest(At, rising, params, BacktestSettings(fee=0)).trades
    assert (trade.exit_index, trade.exit_price, trade.exit_reason) == (2, 95.0, "stop_loss")
