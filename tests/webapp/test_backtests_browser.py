"""Backtests in Chromium: submit the form, watch the progress, see the results with their charts;
compare two runs; a grid's heatmap."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.backtest import metric_labels, run_lifecycle, run_params
from core.models import BacktestRun
from core.strategies.templates import get_template
from tests.backtest_support import insert_candles, make_strategy, read_rows

pytestmark = pytest.mark.browser

ROWS = read_rows(limit=1500)


@pytest.fixture()
def trader(redis_client, browser_login, db_session):
    insert_candles(db_session, ROWS)
    return browser_login()[0]


def queued_run(db_session, user_id, version, **changes) -> int:
    run = run_lifecycle.create_run(
        db_session,
        user_id,
        run_params.RunRequest(
            strategy_version_id=version.id, venue="binance", symbol="BTCUSDT", timeframe="1h", **changes
        ),
    )
    db_session.commit()
    return run.id


def test_submit_watch_progress_and_read_results(page, trader, db_session, celery_worker_process):
    make_strategy(db_session, trader.id, name="browser-sma")
    # A phone-width page: its charts are too narrow for 1,500 bars at the charts' default 0.5 px per bar.
    page.set_viewport_size({"width": 480, "height": 900})
    page.goto("/backtests/")
    page.click("#new-backtest")
    page.wait_for_url("**/backtests/new")
    page.select_option("select[name=strategy_version]", label="browser-sma · v1")
    # Other tests store other markets in the same database: choose this test's candles explicitly.
    page.select_option("select[name=dataset]", value="binance|BTCUSDT|1h")
    page.fill("input[name=params]", "fast=7")
    page.fill("input[name=fee]", "0.002")
    page.click("button:has-text('Run backtest')")
    page.wait_for_url(re.compile(r"/backtests/\d+$"))
    # The worker may already be done; either way the page ends on the results with drawn charts.
    page.wait_for_selector("#bt-charts[data-ready]", timeout=30_000)
    assert page.locator("#chart-candles canvas").count() > 0
    assert page.locator("#chart-equity canvas").count() > 0 and page.locator("#chart-drawdown canvas").count() > 0
    run = db_session.get(BacktestRun, int(page.url.rsplit("/", 1)[1]))
    assert (run.status, run.params) == ("done", {"fast": 7}) and float(run.fee) == 0.002
    assert int(page.get_attribute("#bt-charts", "data-ready")) == run.num_candles >= len(ROWS)
    expect(page.locator("#bt-charts")).to_have_attribute("data-first-bar-shown", "0")  # framed to the whole run
    metric = page.locator("tr[data-metric=total_return_pct] th")
    expect(metric).to_have_text("Total return %")  # in words, its definition from docs/METRICS.md on hover
    assert metric.get_attribute("title") == metric_labels.definition("total_return_pct") != ""
    assert page.locator(".bt-trades tbody tr").count() > 0
    with page.expect_download() as download:
        page.click("#trades-csv")
    assert download.value.suggested_filename.endswith("-trades.csv")


def test_progress_bar_turns_into_results_without_a_reload(page, trader, db_session):
    version = make_strategy(db_session, trader.id)
    run_id = queued_run(db_session, trader.id, version)
    page.goto(f"/backtests/{run_id}")
    assert page.locator("#bt-progress progress").is_visible()
    assert page.locator("#bt-progress .stage").inner_text() == "queued"
    run_lifecycle.execute_run(run_id)  # the worker's body, in this process: the page polls and turns into results
    page.wait_for_selector("#bt-charts[data-ready]", timeout=15_000)
    assert page.locator("#bt-progress").count() == 0
    assert db_session.get(BacktestRun, run_id).status == "done"


def test_compare_two_runs_and_a_grid_heatmap(page, trader, db_session):
    version = make_strategy(db_session, trader.id)
    ids = [queued_run(db_session, trader.id, version, params={"fast": f}) for f in (6, 12)]
    grid_id = queued_run(
        db_session, trader.id, version, grid={"fast": [5, 10], "slow": [30, 40]}, grid_metric="total_return_pct"
    )
    for run_id in [*ids, grid_id]:
        run_lifecycle.execute_run(run_id)
    page.goto("/backtests/")
    for run_id in ids:
        page.check(f"input[name=run][value='{run_id}']")
    page.click("#compare-selected")
    page.wait_for_url("**/backtests/compare?*")
    page.wait_for_selector("#bt-compare-chart[data-ready='2']", timeout=15_000)
    assert page.locator("#bt-legend span").all_inner_texts() == [
        f"#{i}" for i in sorted(ids, reverse=True)
    ]  # list order, newest first
    assert page.locator("tr[data-metric=sharpe] td").count() == 2
    page.goto(f"/backtests/{grid_id}")
    assert page.locator(".bt-heatmap td.cell").count() == 4
    page.select_option("select[name=metric]", "sharpe")
    page.wait_for_url("**metric=sharpe")
    assert "Sharpe ratio over fast × slow" in page.locator("#bt-grid h2").first.inner_text()


LADDER = """
import ta

from core.strategies import Strategy, crossed_above


class EmaLadder(Strategy):
    params = {"ema": 50}

    def init(self):
        self.ema = self.indicator(ta.trend.ema_indicator, self.data.close, window=self.params["ema"])

    def should_long(self) -> bool:
        return crossed_above(self.data.close, self.ema)

    def should_exit(self) -> bool:
        return False

    def position_size(self) -> float:
        return 1.0

    def stop_loss(self):
        return self.data.close[-1] * 0.95

    def take_profit_ladder(self):
        return [(1.0, 50), (2.5, 50)]
"""


@pytest.mark.parametrize(
    ("code", "class_name", "exits"),
    [
        (get_template("ema_trailing").code, "EmaTrailing", {"trailing stop"}),
        (LADDER, "EmaLadder", {"take profit"}),
    ],
    ids=["trailing-stop-template", "take-profit-ladder"],
)
def test_a_strategy_with_a_trailing_stop_or_a_ladder_backtests_from_the_page_with_its_exits_named(
    page, trader, db_session, celery_worker_process, code, class_name, exits
):
    version = make_strategy(db_session, trader.id, code=code, name=f"browser-{class_name}")
    version.class_name = class_name
    db_session.commit()
    page.goto("/backtests/new")
    page.select_option("select[name=strategy_version]", label=f"browser-{class_name} · v1")
    page.select_option("select[name=dataset]", value="binance|BTCUSDT|1h")
    page.click("button:has-text('Run backtest')")
    page.wait_for_url(re.compile(r"/backtests/\d+$"))
    page.wait_for_selector("#bt-charts[data-ready]", timeout=30_000)
    reasons = set(page.locator(".bt-trades tbody tr td:last-child").all_inner_texts())
    assert exits <= reasons, reasons
    page.screenshot(path=f"/tmp/backtest-{class_name}.png", full_page=True)
