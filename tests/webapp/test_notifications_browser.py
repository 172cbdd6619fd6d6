"""In a real browser: the header's bell counts a notification the moment notify() is called."""

from __future__ import annotations

from playwright.sync_api import expect

from core.notifications import notify


def test_the_bell_updates_live(page, browser_login):
    user, _ = browser_login()
    page.goto("/trading/")
    count = page.locator("#bell #bell-count")
    expect(count).to_have_attribute("data-unread", "0")
    # The stream's first event (the count at connection) replaced the bell the page was rendered with.
    expect(count).to_have_attribute("data-live", "1")
    notify(user.id, "error", "order", "Order rejected", link="/trading/")
    expect(count).to_have_attribute("data-unread", "1", timeout=5_000)
    expect(count).to_have_text("1")
    notify(user.id, "warning", "bot", "Bot paused")
    expect(count).to_have_attribute("data-unread", "2", timeout=5_000)
    page.click("#bell")
    expect(page.locator("#notifications")).to_contain_text("Order rejected")
