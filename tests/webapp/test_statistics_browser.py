"""Browser journey (Playwright + Chromium): a trader opens Statistics from the navigation, sees the
cumulative P&L chart drawn and the tables filled from their ledger, filters by broker and downloads the CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.webapp.test_statistics import DAY1, DAY2, DAY3, Ledger

pytestmark = pytest.mark.browser


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
