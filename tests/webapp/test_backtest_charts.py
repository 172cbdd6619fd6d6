"""What the backtest result pages draw, from runs executed through the real sandbox against candles in
the real Postgres: the merged price chart with its trade markers, and the grid heat-map."""

from __future__ import annotations

import pytest

from core.backtest import run_lifecycle, run_params
from core.models import BacktestRun
from tests.backtest_support import insert_candles, make_strategy, read_rows
from webapp import backtest_charts

ROWS = read_rows(limit=2000)


@pytest.fixture()
def trader(db_session, make_user):
    insert_candles(db_session, ROWS)
    return make_user()[0]


def finished_run(db_session, user_id, **changes) -> BacktestRun:
    version = make_strategy(db_session, user_id)
    request = run_params.RunRequest(
        strategy_version_id=version.id,
        venue="binance",
        symbol="BTCUSDT",
        timeframe="1h",
        start_ms=int(ROWS[0][0]),
        end_ms=int(ROWS[-1][0]),
        **changes,
    )
    run_id = run_lifecycle.create_run(db_session, user_id, request).id
    db_session.commit()
    assert run_lifecycle.execute_run(run_id) == "done"
    db_session.expire_all()
    return db_session.get(BacktestRun, run_id)


def test_chart_data_merges_bars_and_puts_markers_on_them(db_session, trader):
    run = finished_run(db_session, trader.id)
    data = backtest_charts.chart_data(db_session, run, max_bars=500)
    assert len(data["candles"]) == 500
    highs = [float(r[2]) for r in ROWS[:4]]
    assert data["candles"][0]["high"] == max(highs) and data["candles"][0]["open"] == float(ROWS[0][1])
    bar_times = {b["time"] for b in data["candles"]}
    assert len(data["markers"]) >= len(run.trades) and all(m["time"] in bar_times for m in data["markers"])
    assert [m["time"] for m in data["markers"]] == sorted(m["time"] for m in data["markers"])
    assert len(data["equity"]) == len(data["drawdown"]) == len(ROWS)
    assert min(p["value"] for p in data["drawdown"]) == pytest.approx(run.metrics["max_drawdown_intraday_pct"])


def test_grid_heatmap_has_one_cell_per_combination_coloured_by_rank(db_session, trader):
    grid = run_params.parse_grid("fast = 5, 10, 15\nslow = 30..40:10")
    run = finished_run(db_session, trader.id, grid=grid, grid_metric="total_return_pct")
    heat = backtest_charts.grid_heatmap(run)
    assert (heat.row_param, heat.col_param, heat.row_values, heat.col_values) == ("fast", "slow", [5, 10, 15], [30, 40])
    entry = next(r for r in run.grid_results if (r["params"]["fast"], r["params"]["slow"]) == (10, 40))
    assert heat.cells[1][1]["value"] == pytest.approx(entry["metrics"]["total_return_pct"])
    top = max((c for row in heat.cells for c in row), key=lambda c: c["value"])
    assert top["color"] == "hsl(130 55% 32%)"
    bottom = min((c for row in heat.cells for c in row), key=lambda c: c["value"])
    assert bottom["color"] == "hsl(0 55% 32%)"
