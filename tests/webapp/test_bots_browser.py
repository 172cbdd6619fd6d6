"""Browser journey (Playwright + Chromium): create a bot on a broken strategy, start it, and watch the
bot page show it stopped with the strategy's error after a real tick on a real Celery worker."""

# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core import tasks
from core.infra.db import new_session, session_scope
from core.models import Bot
from core.strategies import store as strategy_store
from tests.core.bots.fixtures import RAISES, RAISES_LINE, hour_candles  # noqa: F401
from tests.trading_support import make_trader

pytestmark = pytest.mark.browser


def test_create_start_and_see_a_broken_bot_stopped_with_its_error(
    page, browser_login, sim, hour_candles, celery_worker_process
):
    from workers.celery_app import app

    user, password = browser_login()
    make_trader(lambda: (user, password), sim)
    with session_scope() as session:
        strategy_store.create_strategy(session, user.id, "Broken one", code=RAISES)

    page.goto("/bots/")
    page.fill("input[name=name]", "my first bot")
    page.select_option("select[name=strategy_version_id]", label="Broken one v1")
    page.fill("input[name=symbol]", "BTCUSDT")
    page.select_option("select[name=timeframe]", "1h")
    page.click("#new-bot button[type=submit]")
    expect(page.locator("h1")).to_have_text("my first bot")
    expect(page.locator(".bot-state").first).to_have_text("paused")
    page.get_by_role("button", name="Start").click()
    expect(page.locator(".bot-state").first).to_have_text("running")

    with new_session() as session:
        bot_id = session.query(Bot.id).filter(Bot.user_id == user.id).scalar()
    try:
        result = tasks.send_bot_tick(bot_id, hour_candles[-1], "1h", app=app).get(timeout=90)
        assert result["action"] == "error"
        # The page polls: no reload needed to see the bot stopped, with the error and its line.
        error = page.locator(".bot-error")
        expect(error).to_contain_text("Stopped by an error in the strategy", timeout=20_000)
        expect(error).to_contain_text("ValueError")
        expect(error).to_contain_text("cannot decide at this price")
        expect(error).to_contain_text(f"line {RAISES_LINE}")
        expect(page.locator("#bot-ticks")).to_contain_text("error")
        page.goto("/bots/")
        expect(page.locator("[role=alert]").filter(has_text="my first bot")).to_contain_text(
            re.compile(r"is stopped:\s+ValueError")
        )
    finally:
        with session_scope() as session:
            session.get(Bot, bot_id).state = "paused"
