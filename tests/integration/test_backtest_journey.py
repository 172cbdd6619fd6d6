"""A trader's backtest journey over real HTTP with a real Celery worker: a refused form, a run, a
failing strategy next to it, a grid, then comparing runs and exporting trades."""

from __future__ import annotations

import csv
import io

import pytest

from bench.backtest_web import BacktestWebClient
from tests.backtest_support import failing_strategy, insert_candles, make_strategy, read_rows

ROWS = read_rows("BTCUSDT-1m.csv", limit=3000)
VENUE = "journey"  # candles of this test only: other suites may add more BTCUSDT 1m candles


@pytest.fixture()
def trader(redis_client, make_user, db_session, live_server):
    insert_candles(db_session, ROWS, venue=VENUE, symbol="BTCUSDT", timeframe="1m")
    user, password = make_user()
    client = BacktestWebClient(live_server)
    client.login(user.username, password)
    return user, client


def form(version_id: int, **changes) -> dict:
    return {
        "strategy_version": str(version_id),
        "dataset": f"{VENUE}|BTCUSDT|1m",
        "start": "",
        "end": "",
        "fee": "0.001",
        "slippage_bps": "2",
        "cash": "5000",
        "params": "",
        "grid": "",
    } | changes


def test_trader_backtests_compares_and_exports(trader, db_session, celery_worker_process):
    user, client = trader
    sma = make_strategy(db_session, user.id, name="journey-sma")
    broken = make_strategy(db_session, user.id, code=failing_strategy(1000), name="journey-broken")

    refused = client.submit(form(sma.id, start="2025-06-01", end="2025-06-02"))
    assert refused.status_code == 400 and "no BTCUSDT 1m candles between 2025-06-01" in refused.text

    fast = client.submit_run(form(sma.id, params="fast=5, slow=20"))
    slow = client.submit_run(form(sma.id, params="fast=20, slow=60"))
    failing = client.submit_run(form(broken.id))
    grid = client.submit_run(form(sma.id, grid="fast = 5..15:5\nslow = 30, 60", grid_metric="sharpe"))
    for run_id in (fast, slow, failing, grid):
        client.wait_finished(run_id, poll_seconds=0.1)

    page = client.page(f"/backtests/{fast}")
    assert 'id="bt-charts"' in page and 'data-metric="total_return_pct"' in page
    chart = client.chart(fast)
    assert len(chart["candles"]) == len(ROWS) and chart["markers"]

    failed_page = client.page(f"/backtests/{failing}")
    assert "The backtest failed" in failed_page and "ZeroDivisionError" in failed_page
    assert "2025-05-20 16:39:00 UTC" in failed_page, "the 1000th candle's time"

    grid_page = client.page(f"/backtests/{grid}")
    assert grid_page.count('class="num cell"') == 6 and "Best combination (Sharpe ratio)" in grid_page

    listing = client.page("/backtests/")
    for run_id in (fast, slow, failing, grid):
        assert f">#{run_id}</a>" in listing
    compared = client.page(f"/backtests/compare?run={fast}&run={slow}")
    assert '"fast": 5' in compared and '"fast": 20' in compared

    exported = client.http.get(client.url(f"/backtests/{fast}/trades.csv"), timeout=10)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows and {r["side"] for r in rows} == {"long"}
    assert all(float(r["entry_price"]) > 0 and r["exit_reason"] for r in rows)
