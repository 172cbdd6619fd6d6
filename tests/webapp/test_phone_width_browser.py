"""Journey: a trader on a phone (390 px wide) opens every page of the menu: nothing overflows the
screen sideways (wide tables scroll inside their card), and no page logs a console error."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
SCREENSHOTS = {"/trading/": Path("/tmp/phone-trading.png"), "/backtests/new": Path("/tmp/phone-backtest.png")}
PAGES = (
    "/",
    "/heartbeat/",
    "/marketdata/",
    "/trading/",
    "/trading/history",
    "/brokers/",
    "/webhooks/",
    "/strategies/",
    "/bots/",
    "/backtests/",
    "/backtests/new",
    "/statistics/",
    "/notifications/",
    "/arbitrage/",
    "/admin/users",
    "/admin/system",
    "/account/password",
)


def test_every_page_fits_a_phone_screen(page, browser_login):
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(f"{page.url}: {message.text}"))
    page.set_viewport_size(PHONE)
    browser_login(is_admin=True)
    overflowing = {}
    for path in PAGES:
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            overflowing[path] = width
        if path in SCREENSHOTS:
            page.screenshot(path=str(SCREENSHOTS[path]), full_page=True)
    assert overflowing == {}
    assert errors == []
