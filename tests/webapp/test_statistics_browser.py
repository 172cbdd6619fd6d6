"""Browser journeys (Playwright + Chromium): a trader opens Statistics from the navigation, sees the P&L
charts drawn and the tables filled from their ledger, filters by broker and downloads the CSV; and sees the
three daily-curve charts and the metric tables per strategy and per bot, without a console error."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core.backtest.metric_labels import definition
from tests.webapp.test_statistics import DAY1, DAY2, DAY3, Ledger

pytestmark = pytest.mark.browser
SCREENSHOT = Path("/tmp/statistics-metrics.png")


def test_statistics_page_draws_the_chart_and_tables_and_filters_by_broker(page, browser_login):
    user, _ = browser_login()
    ledger = Ledger(user.id)
    main, other = ledger.broker("Main desk"), ledger.broker("Second desk")
    bot = ledger.bot(main, "trend-rider")
    ledger.trade(main, "buy", "1", "100", DAY1, source="bot", source_ref=bot)
    ledger.trade(main, "sell", "1", "110", DAY2, source="bot", source_ref=bot)
    ledger.trade(main, "buy", "1", "100", DAY2 + timedelta(hours=1), source="bot", source_ref=bot)
    ledger.trade(main, "sell", "1", "96", DAY3, source="bot", source_ref=bot)
    ledger.trade(other, "buy", "2", "10", DAY1)
    ledger.trade(other, "sell", "2", "12", DAY3 + timedelta(hours=2))

    page.goto("/")
    page.get_by_role("navigation").get_by_role("link", name="Statistics").click()
    expect(page.locator("h1")).to_have_text("Statistics")
    chart = page.locator("#stat-chart")
    expect(chart).to_have_attribute("data-ready", "1")
    expect(chart.locator("canvas").first).to_be_visible()
    box = chart.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 200
    bot_row = page.locator("#stat-by-source tr", has_text="Bot · trend-rider")
    expect(bot_row.locator(".stat-realised")).to_have_text("6.00")
    expect(bot_row.locator(".stat-win-rate")).to_have_text("50.00%")
    expect(bot_row.locator(".stat-profit-factor")).to_have_text("2.50")
    expect(page.locator("#stat-by-source tr", has_text="Manual").locator(".stat-realised")).to_have_text("4.00")
    expect(page.locator("#stat-totals")).to_contain_text("10.00")
    expect(page.locator("#stat-trips tbody tr")).to_have_count(3)

    page.select_option("#stat-filters select[name=broker]", label="Second desk")
    page.click("#stat-filters button[type=submit]")
    expect(page.locator("#stat-by-broker tbody tr")).to_have_count(1)
    expect(page.locator("#stat-by-broker")).to_contain_text("Second desk")
    expect(page.locator("#stat-trips tbody tr")).to_have_count(1)
    expect(page.locator("#stat-chart")).to_have_attribute("data-ready", "1")

    with page.expect_download() as download:
        page.click("#stat-csv")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path()).read())))  # noqa: SIM115
    assert [(row["broker"], row["source"], row["pnl"]) for row in rows] == [("Second desk", "Manual", "4")]

    page.fill("#stat-filters input[name=start]", "2025-03-06")
    page.fill("#stat-filters input[name=end]", "2025-03-01")
    page.click("#stat-filters button[type=submit]")
    expect(page.locator("#stat-error")).to_contain_text("the range ends before it starts")


def test_a_trader_sees_the_three_daily_charts_and_the_metric_tables(page, browser_login):
    problems: list[str] = []  # no console error and no failed request on the way
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on(
        "response", lambda response: response.status >= 400 and problems.append(f"{response.status} {response.url}")
    )
    user, _ = browser_login()
    ledger = Ledger(user.id)
    desk = ledger.broker("Chart desk")
    _, (version,) = ledger.strategy("trend")
    bot = ledger.bot(desk, "trend-rider", version)
    ledger.trade(desk, "buy", "1", "100", DAY1, source="bot", source_ref=bot)
    ledger.trade(desk, "sell", "1", "110", DAY2, source="bot", source_ref=bot)
    ledger.trade(desk, "buy", "1", "108", DAY2 + timedelta(hours=1), source="bot", source_ref=bot)
    ledger.trade(desk, "sell", "1", "101", DAY3, source="bot", source_ref=bot)

    page.goto("/")
    page.get_by_role("navigation").get_by_role("link", name="Statistics").click()
    page.fill("#stat-filters input[name=end]", DAY3.date().isoformat())
    page.click("#stat-filters button[type=submit]")
    expect(page.locator("#stat-charts")).to_have_attribute("data-ready", "1")
    for chart_id in ("stat-chart", "stat-daily-chart", "stat-drawdown-chart"):
        chart = page.locator(f"#{chart_id}")
        expect(chart.locator("canvas").first).to_be_visible()
        box = chart.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 150
    live = page.locator("#stat-bot-metrics tr.stat-live", has_text="trend-rider")
    expect(live.locator("td[data-metric=total_return_pct]")).to_have_text("2.78")  # +10 − 7 on 108 at work
    expect(live.locator("td[data-metric=win_rate_pct]")).to_have_text("50.00")
    sharpe = page.locator("#stat-bot-metrics th[data-metric=sharpe]")
    expect(sharpe).to_have_text("Sharpe ratio")
    expect(sharpe).to_have_attribute("title", definition("sharpe"))
    expect(page.locator("#stat-bot-metrics tr.stat-backtest")).to_contain_text(
        "No backtest of this bot's live period yet"
    )
    expect(page.locator("#stat-strategy-metrics tr.stat-live", has_text="trend")).to_have_count(1)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # All time, to today: the charts follow the fills as they arrive (polled every 10 s), no reload.
    page.click("#stat-filters a.button:has-text('Reset')")
    expect(page.locator("#stat-charts")).to_have_attribute("data-last", re.compile(r"^USDT 3(\.0+)?$"))
    now = datetime.now(UTC)
    ledger.trade(desk, "buy", "1", "100", now - timedelta(minutes=2), source="bot", source_ref=bot)
    ledger.trade(desk, "sell", "1", "105", now - timedelta(minutes=1), source="bot", source_ref=bot)
    expect(page.locator("#stat-charts")).to_have_attribute("data-last", re.compile(r"^USDT 8(\.0+)?$"), timeout=30_000)
    assert problems == []
