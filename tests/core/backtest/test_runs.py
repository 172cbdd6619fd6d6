"""Backtest runs: validation at creation (nothing recorded on bad input), execution through the real
sandbox against candles in the real Postgres, grids and CSV export (what the result pages draw:
tests/webapp/test_backtest_charts.py)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.backtest import run_lifecycle, run_params, run_results
from core.backtest.engine import BacktestSettings, run_backtest
from core.backtest.run_jobs import backtest_with_series, downsample_series, grid_chunk
from core.infra.bus import backtest_progress, backtest_run_progress
from core.models import BacktestRun, Candle
from core.strategies.loader import load_strategy_class
from tests.backtest_support import SMA_CROSS, failing_strategy, insert_candles, make_strategy, read_rows

ROWS = read_rows(limit=2000)  # contains Binance's 2017-09-06 outage (6 missing hours)


@pytest.fixture()
def candles(db_session):
    insert_candles(db_session, ROWS)
    return ROWS


@pytest.fixture()
def trader(make_user):
    return make_user()[0]


def request_for(version, **changes) -> run_params.RunRequest:
    base = dict(
        strategy_version_id=version.id,
        venue="binance",
        symbol="BTCUSDT",
        timeframe="1h",
        start_ms=int(ROWS[0][0]),
        end_ms=int(ROWS[-1][0]),
    )
    return run_params.RunRequest(**(base | changes))


def run_count(session, user_id) -> int:
    return session.scalar(select(func.count()).select_from(BacktestRun).where(BacktestRun.user_id == user_id))


def frame(rows) -> pd.DataFrame:
    data = pd.DataFrame(
        [[int(r[0]), *map(float, r[1:])] for r in rows], columns=["open_time", "open", "high", "low", "close", "volume"]
    )
    return data.astype({"open_time": "int64"})


# --------------------------------------------------------------------------- parsing


def test_grid_ranges_steps_and_lists():
    grid = run_params.parse_grid("fast = 5..20:5\nslow = 20..60 step 20; size = 0.5, 1.0")
    assert grid == {"fast": [5, 10, 15, 20], "slow": [20, 40, 60], "size": ["0.5", "1.0"]}
    assert run_params.parse_grid("x = 0.1..0.3:0.1") == {"x": [0.1, 0.2, 0.3]}  # no 0.30000000000000004
    assert len(run_params.grid_combinations(grid)) == 4 * 3 * 2


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("fast = 1..1000000000", "1,000,000,000 values"),
        ("fast = 1..20\nslow = 1..20", "20 × 20 = 400 combinations"),
        ("fast = 20..5", "must not exceed"),
        ("fast = 5..20:0", "step"),
        ("fast = 5..20:-1", "step"),
        ("fast 5..20", "not NAME"),
        ("fast = 5..20\nfast = 1, 2", "twice"),
        ("fast = 1e999..2", "out of range"),
        ("fast = 1..1e400", "out of range"),
        ("fast = 1..2..3", "not START..END"),
    ],
)
def test_bad_grids_are_refused_with_a_reason(text, fragment):
    with pytest.raises(run_params.RunInputError) as excinfo:
        run_params.parse_grid(text)
    assert fragment in str(excinfo.value)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-50, 50), st.integers(0, 400), st.integers(1, 30)), min_size=1, max_size=4))
def test_grid_size_is_the_product_or_a_clear_refusal(specs):
    text = "\n".join(f"p{i} = {a}..{a + span}:{step}" for i, (a, span, step) in enumerate(specs))
    expected = int(np.prod([span // step + 1 for _, span, step in specs]))
    if expected > run_params.MAX_GRID_COMBINATIONS:
        with pytest.raises(run_params.RunInputError, match="at most"):
            run_params.parse_grid(text)
        return
    grid = run_params.parse_grid(text)
    combos = run_params.grid_combinations(grid)
    assert len(combos) == expected
    for i, (a, span, step) in enumerate(specs):
        assert grid[f"p{i}"][0] == a and grid[f"p{i}"][-1] <= a + span and np.all(np.diff(grid[f"p{i}"]) == step)


def test_params_text():
    assert run_params.parse_params("fast=5, slow = 40\nflag=true") == {"fast": "5", "slow": "40", "flag": "true"}
    assert run_params.parse_params("  ") == {}
    for bad in ("fast", "fast=", "=3", "1x=3"):
        with pytest.raises(run_params.RunInputError):
            run_params.parse_params(bad)


def test_default_params_are_read_without_running_the_code():
    assert run_params.default_params(SMA_CROSS) == {"fast": 10, "slow": 30}
    assert run_params.default_params("class A:\n    params = {'n': open('x')}") is None
    assert run_params.default_params("def broken(:") is None


# --------------------------------------------------------------------------- creating


def test_create_run_records_a_queued_run(db_session, trader, candles):
    version = make_strategy(db_session, trader.id, params={"fast": 8})
    run = run_lifecycle.create_run(db_session, trader.id, request_for(version, params={"slow": "40"}))
    db_session.commit()
    assert (run.status, run.progress, run.kind) == ("queued", 0, "single")
    assert run.params == {"fast": 8, "slow": 40}, "version values, then the form's, typed like the defaults"
    assert run.num_candles == len(ROWS)


@pytest.mark.parametrize(
    "changes, fragment",
    [
        (dict(fee=Decimal("0.5")), "fee must be"),
        (dict(fee=Decimal("-0.001")), "fee must be"),
        (dict(cash=Decimal("-5")), "cash must be positive"),
        (dict(cash=Decimal("1e30")), "cash must be positive"),
        (dict(slippage_bps=Decimal("5000")), "slippage_bps"),
        (dict(params={"fsat": "3"}), "unknown parameter 'fsat'"),
        (dict(params={"fast": "ten"}), "must be an integer"),
        (dict(params={"fast": "100000000000000"}), "absurdly large"),
        (dict(start_ms=1502942400000, end_ms=1502942399999), "start of the date range is after its end"),
        (dict(start_ms=1_800_000_000_000, end_ms=1_900_000_000_000), "no BTCUSDT 1h candles between 2027"),
        (dict(symbol="NOPEUSDT"), "no NOPEUSDT 1h candles from binance"),
        (dict(grid={"fast": [5, 10]}, grid_metric="luck"), "rank by one of"),
        (dict(grid={"fast": ["x"]}, grid_metric="sharpe"), "grid: parameter 'fast' must be an integer"),
        (dict(strategy_version_id=10**9), "choose one of your strategies"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_recorded(db_session, trader, candles, changes, fragment):
    version = make_strategy(db_session, trader.id)
    with pytest.raises(run_params.RunInputError) as excinfo:
        run_lifecycle.create_run(db_session, trader.id, request_for(version, **changes))
    db_session.rollback()
    assert fragment in str(excinfo.value)
    assert run_count(db_session, trader.id) == 0


def test_another_users_strategy_or_an_invalid_version_cannot_run(db_session, make_user, candles):
    owner, other = make_user()[0], make_user()[0]
    version = make_strategy(db_session, owner.id)
    with pytest.raises(run_params.RunInputError, match="choose one of your strategies"):
        run_lifecycle.create_run(db_session, other.id, request_for(version))
    broken = make_strategy(db_session, owner.id, valid=False)
    with pytest.raises(run_params.RunInputError, match="has errors"):
        run_lifecycle.create_run(db_session, owner.id, request_for(broken))


def test_too_many_candles_for_one_run(db_session, trader, candles, monkeypatch):
    monkeypatch.setattr(run_lifecycle, "MAX_RUN_CANDLES", 100)
    version = make_strategy(db_session, trader.id)
    with pytest.raises(run_params.RunInputError, match="narrow the dates"):
        run_lifecycle.create_run(db_session, trader.id, request_for(version))


# --------------------------------------------------------------------------- executing


def create(db_session, user_id, version, **changes) -> int:
    run = run_lifecycle.create_run(db_session, user_id, request_for(version, **changes))
    db_session.commit()
    return run.id


def test_run_matches_the_engine_on_the_same_candles(db_session, trader, candles, redis_client):
    version = make_strategy(db_session, trader.id)
    run_id = create(db_session, trader.id, version, params={"fast": "12"}, fee=Decimal("0.0015"))
    assert run_lifecycle.execute_run(run_id) == "done"
    db_session.expire_all()
    run = db_session.get(BacktestRun, run_id)
    expected = run_backtest(load_strategy_class(SMA_CROSS), frame(ROWS), {"fast": 12}, BacktestSettings(fee=0.0015))
    assert (run.status, run.stage, run.progress, run.error) == ("done", "done", 100, None)
    assert run.metrics["total_return_pct"] == pytest.approx(expected.metrics["total_return_pct"])
    assert len(run.trades) == len(expected.trades) > 5
    assert float(run.final_equity) == pytest.approx(expected.final_equity, abs=1e-6)
    assert run.resolved_params == {"fast": 12, "slow": 30}
    assert run.started_at <= run.finished_at
    assert run.gaps and run.gaps[0]["missing"] == 6, "the 2017-09-06 outage is reported, the run continues"
    assert len(run.series["equity"]) == len(ROWS) and run.series["equity"][-1] == pytest.approx(expected.final_equity)
    assert json.loads(redis_client.get(backtest_run_progress(run_id)))["status"] == "done"
    assert run_lifecycle.execute_run(run_id) == "done", "a redelivered task leaves a finished run alone"


def test_progress_is_published_at_each_stage(db_session, trader, candles, redis_client):
    version = make_strategy(db_session, trader.id)
    run_id = create(db_session, trader.id, version)
    pubsub = redis_client.pubsub()
    pubsub.subscribe(backtest_progress(trader.id))
    run_lifecycle.execute_run(run_id)
    messages = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:
        if message["type"] == "message":
            messages.append(json.loads(message["data"]))
    pubsub.close()
    stages = [m.get("stage") for m in messages]
    assert stages[:3] == ["loading candles", "running strategy", "storing results"]
    assert messages[-1]["status"] == "done"
    assert [m["progress"] for m in messages if "progress" in m] == sorted(
        m["progress"] for m in messages if "progress" in m
    )


def test_failing_strategy_marks_the_run_failed_with_line_and_candle(db_session, trader, candles):
    version = make_strategy(db_session, trader.id, code=failing_strategy(500))
    run_id = create(db_session, trader.id, version)
    assert run_lifecycle.execute_run(run_id) == "failed"
    db_session.expire_all()
    run = db_session.get(BacktestRun, run_id)
    assert run.error["type"] == "exception" and "ZeroDivisionError" in run.error["message"]
    assert run.error["candle_time"] == pd.Timestamp(int(ROWS[499][0]), unit="ms").strftime("%Y-%m-%d %H:%M:%S UTC")
    assert (
        run.error["line"]
        == failing_strategy(500).splitlines().index("        return 1 / (len(self.data.close) - 500) > 2") + 1
    )
    assert run.metrics is None and run.finished_at is not None
    healthy = make_strategy(db_session, trader.id)
    assert run_lifecycle.execute_run(create(db_session, trader.id, healthy)) == "done", "nothing else breaks"


def test_a_strategy_that_never_returns_fails_the_run_within_its_phase_budget(db_session, trader, candles):
    """A worker backtest gets the same budgets as the CLI: `init` looping forever fails the run in seconds,
    naming the method and the line, not after the run's whole budget (a base plus an allowance per candle)."""
    looping = SMA_CROSS.replace("    def init(self):\n", "    def init(self):\n        while True:\n            pass\n")
    run_id = create(db_session, trader.id, make_strategy(db_session, trader.id, code=looping))
    assert run_lifecycle.execute_run(run_id) == "failed"
    db_session.expire_all()
    error = db_session.get(BacktestRun, run_id).error
    assert "the strategy did not finish `init` within" in error["message"], error
    assert error["line"] in (
        looping.splitlines().index("        while True:") + 1,
        looping.splitlines().index("            pass") + 1,
    )


def test_absurd_parameter_value_fails_the_run_not_the_worker(db_session, trader, candles):
    version = make_strategy(db_session, trader.id)
    run_id = create(db_session, trader.id, version, params={"fast": "-5"})
    assert run_lifecycle.execute_run(run_id) == "failed"
    db_session.expire_all()
    error = db_session.get(BacktestRun, run_id).error
    assert error["message"] and error["text"]


def test_candles_deleted_after_creation_fail_the_run_clearly(db_session, trader):
    rows = read_rows(limit=300, skip=5000)
    insert_candles(db_session, rows, symbol="GONEUSDT")
    version = make_strategy(db_session, trader.id)
    run_id = create(db_session, trader.id, version, symbol="GONEUSDT", start_ms=None, end_ms=None)
    db_session.execute(Candle.__table__.delete().where(Candle.symbol == "GONEUSDT"))
    db_session.commit()
    assert run_lifecycle.execute_run(run_id) == "failed"
    db_session.expire_all()
    assert "no candles" in db_session.get(BacktestRun, run_id).error["message"]


def test_a_run_left_running_by_a_dead_worker_is_restarted(db_session, trader, candles):
    version = make_strategy(db_session, trader.id)
    run_id = create(db_session, trader.id, version)
    run = db_session.get(BacktestRun, run_id)
    run.status = "running"
    db_session.commit()
    assert run_lifecycle.execute_run(run_id) == "done"
    assert run_lifecycle.execute_run(10**9) == "missing"


def test_grid_runs_every_combination_and_ranks_them(db_session, trader, candles):
    version = make_strategy(db_session, trader.id)
    grid = run_params.parse_grid("fast = 5, 10, 15\nslow = 30..40:10")
    run_id = create(db_session, trader.id, version, grid=grid, grid_metric="total_return_pct")
    assert run_lifecycle.execute_run(run_id) == "done"
    db_session.expire_all()
    run = db_session.get(BacktestRun, run_id)
    assert run.kind == "grid" and len(run.grid_results) == 6
    by_params = {(r["params"]["fast"], r["params"]["slow"]): r for r in run.grid_results}
    solo = run_backtest(load_strategy_class(SMA_CROSS), frame(ROWS), {"fast": 10, "slow": 40})
    assert by_params[(10, 40)]["metrics"]["total_return_pct"] == pytest.approx(solo.metrics["total_return_pct"])
    best = max(run.grid_results, key=lambda r: r["metrics"]["total_return_pct"])
    assert run.metrics == best["metrics"] and run.resolved_params == best["params"]


def test_grid_where_every_combination_fails_is_failed(db_session, trader, candles):
    version = make_strategy(db_session, trader.id, code=failing_strategy(50))
    run_id = create(db_session, trader.id, version, grid={"fast": [5, 6]}, grid_metric="sharpe")
    assert run_lifecycle.execute_run(run_id) == "failed"
    db_session.expire_all()
    run = db_session.get(BacktestRun, run_id)
    assert "ZeroDivisionError" in run.error["message"] and len(run.grid_results) == 2


# --------------------------------------------------------------------------- sandbox jobs, in process


def payload_for(rows) -> dict:
    data = frame(rows)
    return {"candles": {c: data[c].tolist() for c in data.columns}}


def test_unsorted_and_empty_candles_are_input_errors():
    cls = load_strategy_class(SMA_CROSS)
    shuffled = ROWS[:100] + ROWS[50:60]
    result = backtest_with_series(cls, payload_for(shuffled))
    assert result["status"] == "failed" and "sort" in result["error"]["message"]
    empty = backtest_with_series(
        cls, {"candles": {c: [] for c in ("open_time", "open", "high", "low", "close", "volume")}}
    )
    assert empty["status"] == "failed" and "no candles" in empty["error"]["message"]
    chunk = grid_chunk(cls, {**payload_for(shuffled), "params_list": [{"fast": 3}, {"fast": 4}]})
    assert [r["status"] for r in chunk["results"]] == ["failed", "failed"]


def test_grid_chunk_keeps_going_after_a_bad_combination():
    chunk = grid_chunk(
        load_strategy_class(SMA_CROSS), {**payload_for(ROWS[:600]), "params_list": [{"fast": "x"}, {"fast": 5}]}
    )
    bad, good = chunk["results"]
    assert bad["status"] == "failed" and "integer" in bad["error"]["message"]
    assert good["status"] == "ok" and good["params"] == {"fast": 5, "slow": 30}


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 3000), st.integers(2, 500), st.integers(0, 2**31))
def test_downsampling_keeps_the_shape_that_matters(n, max_points, seed):
    rng = np.random.default_rng(seed)
    times = np.arange(n, dtype="int64") * 60_000
    equity = 1000 + np.cumsum(rng.normal(0, 5, n))
    dd = np.minimum(0, rng.normal(-0.1, 0.1, n))
    out = downsample_series(times, equity, dd, max_points)
    assert len(out["time_ms"]) == len(out["equity"]) == len(out["drawdown"]) <= max(max_points, 1)
    assert out["equity"][-1] == equity[-1] and out["time_ms"][-1] == times[-1]
    assert min(out["drawdown"]) == dd.min(), "the worst drawdown survives"
    assert np.all(np.diff(out["time_ms"]) > 0)


# --------------------------------------------------------------------------- reading


def test_trades_csv_and_compare_rows(db_session, trader, candles):
    version = make_strategy(db_session, trader.id)
    first, second = (create(db_session, trader.id, version, params={"fast": f}) for f in ("8", "12"))
    for run_id in (first, second):
        run_lifecycle.execute_run(run_id)
    db_session.expire_all()
    a, b = run_results.owned_runs(db_session, trader.id, [first, second])
    rows = list(csv.DictReader(io.StringIO(run_results.trades_csv(a))))
    assert len(rows) == len(a.trades) and rows[0]["side"] == "long" and float(rows[0]["entry_price"]) > 0
    metrics = dict(run_results.compare_metric_rows([a, b]))
    assert metrics["total_return_pct"] == [a.metrics["total_return_pct"], b.metrics["total_return_pct"]]
    with pytest.raises(LookupError):
        run_results.owned_runs(db_session, trader.id + 1, [first])
    assert [r.id for r in run_results.list_runs(db_session, trader.id)] == [second, first]
