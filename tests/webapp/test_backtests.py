"""Backtests pages over the Flask test client, real Postgres/Redis; runs executed in process (the real
sandbox) where a page needs results. Cross-tenant access is a 404; each bad input is a 400 that keeps
what the trader typed."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from core.backtest import run_lifecycle, run_params
from core.models import BacktestRun
from tests.backtest_support import failing_strategy, insert_candles, make_strategy, read_rows
from tests.support import csrf_token_from

ROWS = read_rows(limit=1200)
FIRST_DAY, LAST_DAY = "2017-08-17", "2017-10-05"


@pytest.fixture()
def trader(redis_client, logged_in, db_session):
    """A logged-in trader (redis_client first: its flush resets the login rate limit of 10/min)."""
    insert_candles(db_session, ROWS)
    return logged_in


def form_data(client, version_id: int, **changes) -> dict:
    token = csrf_token_from(client.get("/backtests/new").get_data(as_text=True))
    data = {
        "csrf_token": token,
        "strategy_version": str(version_id),
        "dataset": "binance|BTCUSDT|1h",
        "start": FIRST_DAY,
        "end": LAST_DAY,
        "fee": "0.001",
        "slippage_bps": "0",
        "cash": "10000",
        "params": "fast=10, slow=30",
        "grid": "",
        "grid_metric": "total_return_pct",
    }
    return data | changes


def runs_of(session, user_id) -> list[BacktestRun]:
    session.expire_all()
    return list(session.scalars(select(BacktestRun).where(BacktestRun.user_id == user_id)))


def finished_run(db_session, user_id, version, **changes) -> BacktestRun:
    request = run_params.RunRequest(
        strategy_version_id=version.id,
        venue="binance",
        symbol="BTCUSDT",
        timeframe="1h",
        start_ms=int(ROWS[0][0]),
        end_ms=int(ROWS[-1][0]),
        **changes,
    )
    run = run_lifecycle.create_run(db_session, user_id, request)
    db_session.commit()
    run_lifecycle.execute_run(run.id)
    db_session.expire_all()
    return db_session.get(BacktestRun, run.id)


def test_pages_need_a_login(client):
    for path in (
        "/backtests/",
        "/backtests/new",
        "/backtests/1",
        "/backtests/1/chart.json",
        "/backtests/compare?run=1&run=2",
    ):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_form_lists_my_strategies_and_the_markets_in_the_database(client, trader, db_session, make_user):
    mine = make_strategy(db_session, trader.id, name="my-sma")
    make_strategy(db_session, make_user()[0].id, name="their-secret-sma")
    make_strategy(db_session, trader.id, name="broken-one", valid=False)
    html = client.get("/backtests/new").get_data(as_text=True)
    assert f'value="{mine.id}"' in html and "my-sma · v1" in html
    assert "their-secret-sma" not in html and "broken-one" not in html
    assert "binance|BTCUSDT|1h" in html and "BTCUSDT 1h · binance" in html


def test_submit_queues_a_run_and_redirects_to_its_page(client, trader, db_session, redis_client):
    version = make_strategy(db_session, trader.id)
    response = client.post("/backtests/new", data=form_data(client, version.id, params="fast=12"))
    assert response.status_code == 302
    run_id = int(re.search(r"/backtests/(\d+)$", response.headers["Location"]).group(1))
    run = db_session.get(BacktestRun, run_id)
    assert run.user_id == trader.id and run.params == {"fast": 12} and run.kind == "single"
    assert run.start_ms == int(ROWS[0][0]) - 4 * 3_600_000, "the first day from midnight UTC"
    assert run.end_ms == 1507247999999, "the last day included to its last millisecond"
    assert run.task_id, "handed to the backtests queue"
    page = client.get(f"/backtests/{run_id}").get_data(as_text=True)
    assert 'id="bt-progress"' in page and f"/backtests/{run_id}/progress" in page


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"fee": "0.5"}, "fee must be a fraction"),
        ({"fee": "lots"}, "Not a valid decimal value"),
        ({"cash": "-100"}, "Number must be at least 0"),
        ({"cash": "0"}, "cash must be positive"),
        ({"slippage_bps": "99999"}, "slippage_bps must be in"),
        ({"params": "fsat=5"}, "unknown parameter &#39;fsat&#39;"),
        ({"params": "fast=ten"}, "must be an integer"),
        ({"params": "fast=1e30"}, "must be an integer"),
        ({"params": "fast"}, "is not NAME=VALUE"),
        ({"start": "2030-01-01", "end": "2030-02-01"}, "no BTCUSDT 1h candles between 2030-01-01"),
        ({"start": "2017-10-01", "end": "2017-09-01"}, "start of the date range is after its end"),
        ({"start": "not-a-date"}, "Not a valid date value"),
        ({"dataset": "binance|DOGEUSDT|1m"}, "Not a valid choice"),
        ({"grid": "fast = 1..100\nslow = 10..60"}, "100 × 51 = 5,100 combinations; at most"),
        ({"grid": "fast = 1..1000000000"}, "1,000,000,000 values"),
        ({"grid": "fast: 1..5"}, "is not NAME = START..END"),
        ({"grid": "fast = 5, x"}, "grid: parameter &#39;fast&#39; must be an integer"),
    ],
)
def test_each_bad_input_is_a_400_with_the_reason_and_keeps_what_was_typed(client, trader, db_session, changes, message):
    version = make_strategy(db_session, trader.id)
    response = client.post("/backtests/new", data=form_data(client, version.id, **changes))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in html
    for key, value in changes.items():
        if key == "dataset":
            continue  # a select can only show the choices that exist
        assert value.split("\n")[0].replace("'", "&#39;") in html, "the trader's input is still in the form"
    assert runs_of(db_session, trader.id) == []


def test_another_users_strategy_cannot_be_submitted(client, trader, db_session, make_user):
    theirs = make_strategy(db_session, make_user()[0].id)
    response = client.post("/backtests/new", data=form_data(client, theirs.id))
    assert response.status_code == 400 and "Not a valid choice" in response.get_data(as_text=True)
    assert runs_of(db_session, trader.id) == []


def test_results_page_metrics_trades_charts_and_csv(client, trader, db_session):
    run = finished_run(db_session, trader.id, make_strategy(db_session, trader.id))
    html = client.get(f"/backtests/{run.id}").get_data(as_text=True)
    assert 'data-metric="sharpe"' in html and 'data-metric="max_drawdown_pct"' in html
    assert f"Trades ({len(run.trades)})" in html and html.count("<tr><td>") == len(run.trades)
    assert 'id="chart-candles"' in html and 'id="chart-equity"' in html and 'id="chart-drawdown"' in html
    assert "1 gap(s) in the candles (6 missing)" in html
    chart = client.get(f"/backtests/{run.id}/chart.json").get_json()
    assert len(chart["candles"]) == len(ROWS) and len(chart["equity"]) == len(ROWS)
    assert len(chart["markers"]) == 2 * len(run.trades)
    exported = client.get(f"/backtests/{run.id}/trades.csv")
    assert exported.mimetype == "text/csv" and "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [float(r["pnl"]) for r in rows] == pytest.approx([t["pnl"] for t in run.trades])


def test_trades_show_prices_on_the_markets_tick_and_money_with_separators(client, trader, db_session):
    """No broker lists this market: its tick is what its stored candles show (2 places for these closes), so a
    slipped fill price of many decimals reads in 2; cash and P&L are money."""
    run = finished_run(db_session, trader.id, make_strategy(db_session, trader.id), slippage_bps=Decimal("7"))
    first = run.trades[0]
    assert len(f"{first['entry_price']}".split(".")[1]) > 2  # what the engine computed: more than the tick
    soup = BeautifulSoup(client.get(f"/backtests/{run.id}").get_data(as_text=True), "html.parser")
    cells = [td.get_text(strip=True) for td in soup.select("table.bt-trades tbody tr")[0].find_all("td")]
    # #, side, entry time, entry price, exit time, exit price, size, fees, P&L, return
    assert (
        cells[3] == f"{Decimal(str(first['entry_price'])):,.2f}"
        and cells[5] == f"{Decimal(str(first['exit_price'])):,.2f}"
    )
    assert cells[7] == f"{Decimal(str(first['fees'])):,.2f}" and cells[9].endswith("%")
    assert "10,000.00" in soup.select_one(".bt-summary").get_text()


def test_failed_run_shows_the_error_line_and_candle(client, trader, db_session):
    run = finished_run(db_session, trader.id, make_strategy(db_session, trader.id, code=failing_strategy(300)))
    assert run.status == "failed"
    html = client.get(f"/backtests/{run.id}").get_data(as_text=True)
    assert "The backtest failed" in html and "ZeroDivisionError" in html
    assert run.error["candle_time"] in html and f"<dd>{run.error['line']}</dd>" in html
    assert "chart-candles" not in html


def test_progress_fragment_polls_until_finished_then_refreshes(client, trader, db_session):
    version = make_strategy(db_session, trader.id)
    queued = run_lifecycle.create_run(
        db_session,
        trader.id,
        run_params.RunRequest(strategy_version_id=version.id, venue="binance", symbol="BTCUSDT", timeframe="1h"),
    )
    db_session.commit()
    waiting = client.get(f"/backtests/{queued.id}/progress")
    assert "HX-Refresh" not in waiting.headers and 'hx-trigger="every 200ms"' in waiting.get_data(as_text=True)
    run_lifecycle.execute_run(queued.id)
    done = client.get(f"/backtests/{queued.id}/progress")
    assert done.headers["HX-Refresh"] == "true" and "100%" in done.get_data(as_text=True)


def test_list_and_compare_side_by_side(client, trader, db_session):
    version = make_strategy(db_session, trader.id)
    a = finished_run(db_session, trader.id, version, params={"fast": 8})
    b = finished_run(db_session, trader.id, version, params={"fast": 14})
    listing = client.get("/backtests/").get_data(as_text=True)
    assert f'value="{a.id}"' in listing and f'value="{b.id}"' in listing
    html = client.get(f"/backtests/compare?run={a.id}&run={b.id}").get_data(as_text=True)
    assert f"#{a.id}" in html and f"#{b.id}" in html and '"fast": 8' in html and '"fast": 14' in html
    row = re.search(r'data-metric="total_return_pct">(.*?)</tr>', html, re.S).group(1)
    assert row.count("<td") == 2
    series = client.get(f"/backtests/{a.id}/chart.json?series_only=1").get_json()
    assert series["equity"][-1]["value"] == pytest.approx(a.metrics["total_return_pct"])
    single = client.get(f"/backtests/compare?run={a.id}")
    assert single.status_code == 302


def test_grid_page_shows_a_heatmap(client, trader, db_session):
    version = make_strategy(db_session, trader.id)
    run = finished_run(
        db_session, trader.id, version, grid={"fast": [5, 10, 15], "slow": [30, 50]}, grid_metric="sharpe"
    )
    html = client.get(f"/backtests/{run.id}").get_data(as_text=True)
    assert 'class="bt-heatmap"' in html and html.count('class="num cell"') == 6
    assert "fast ↓ · slow →" in html and "Best combination (Sharpe ratio)" in html
    by_return = client.get(f"/backtests/{run.id}?metric=total_return_pct").get_data(as_text=True)
    assert '<option value="total_return_pct" selected>' in by_return


def test_run_again_prefills_the_form(client, trader, db_session):
    run = finished_run(db_session, trader.id, make_strategy(db_session, trader.id), params={"fast": 9})
    html = client.get(f"/backtests/new?from={run.id}").get_data(as_text=True)
    assert 'value="fast=9, slow=30"' not in html and 'value="fast=9"' in html
    assert 'type="date" value="2017-08-17"' in html, "the run's first candle day"
    assert 'value="0.001"' in html and 'value="10000"' in html


def test_other_users_runs_are_404_everywhere(client, trader, db_session, make_user, login):
    run = finished_run(db_session, trader.id, make_strategy(db_session, trader.id))
    other, password = make_user()
    client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/backtests/").get_data(as_text=True))})
    login(other.username, password)
    for path in (
        f"/backtests/{run.id}",
        f"/backtests/{run.id}/progress",
        f"/backtests/{run.id}/chart.json",
        f"/backtests/{run.id}/trades.csv",
        f"/backtests/new?from={run.id}",
        f"/backtests/compare?run={run.id}&run={run.id + 1}",
    ):
        assert client.get(path).status_code == 404, path
    token = csrf_token_from(client.get("/backtests/").get_data(as_text=True))
    assert client.post(f"/backtests/{run.id}/delete", data={"csrf_token": token}).status_code == 404
    assert f"#{run.id}<" not in client.get("/backtests/").get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(BacktestRun).where(BacktestRun.id == run.id)) == 1


def test_delete_a_finished_run(client, trader, db_session):
    run = finished_run(db_session, trader.id, make_strategy(db_session, trader.id))
    token = csrf_token_from(client.get("/backtests/").get_data(as_text=True))
    response = client.post(f"/backtests/{run.id}/delete", data={"csrf_token": token})
    assert response.status_code == 302
    assert runs_of(db_session, trader.id) == []


def test_list_refreshes_only_its_table_while_runs_are_in_progress(client, trader, db_session):
    version = make_strategy(db_session, trader.id)
    run_lifecycle.create_run(
        db_session,
        trader.id,
        run_params.RunRequest(strategy_version_id=version.id, venue="binance", symbol="BTCUSDT", timeframe="1h"),
    )
    db_session.commit()
    page = client.get("/backtests/").get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in page and "<h1>Backtests</h1>" in page
    fragment = client.get("/backtests/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<h1>" not in fragment and "queued 0%" in fragment


def test_submitting_is_limited_per_trader(client, trader, db_session):
    version = make_strategy(db_session, trader.id)
    bad = form_data(client, version.id, start="not-a-date")  # refused at once: no run is queued
    assert [client.post("/backtests/new", data=bad).status_code for _ in range(10)] == [400] * 10
    refused = client.post("/backtests/new", data=bad)
    assert refused.status_code == 429 and "10 per 1 minute" in refused.get_data(as_text=True)
    assert client.get("/backtests/new").status_code == 200  # reading the form is not limited
