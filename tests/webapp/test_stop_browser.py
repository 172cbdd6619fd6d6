# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
"""In a real browser: Pause all and Flatten from the header, the flatten report following the worker live."""

from __future__ import annotations

from core.infra.db import new_session
from core.models import Bot
from tests.core.bots.fixtures import make_bot  # noqa: F401
from tests.stop_support import make_desk, order_state, positions, wait_for
from tests.trading_support import make_trader


def test_pause_all_and_flatten_from_the_header(page, make_user, sim, make_bot, redis_client, celery_worker_process):
    creds = {}

    def recording(*args, **kwargs):
        creds["login"] = make_user(*args, **kwargs)
        return creds["login"]

    trader = make_trader(recording, sim)
    desk = make_desk(trader, make_bot)
    user, password = creds["login"]
    page.goto("/login")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")

    page.goto("/trading/")
    page.click("header button:has-text('Pause all')")
    assert "paused 1 bot(s) and 1 webhook(s)" in page.inner_text("main")
    with new_session() as session:
        assert session.get(Bot, desk.bot_id).state == "paused"

    page.click("header a:has-text('Flatten')")
    plan = page.inner_text("main")
    assert f"cancel order #{desk.resting_order_id}" in plan and "at market (bot" in plan
    page.click("button:has-text('Flatten the chosen brokers now')")
    page.wait_for_selector("#flatten-report .pill.ok", timeout=60_000)  # the page polls the worker's report
    report = page.inner_text("#flatten-report")
    assert f"order #{desk.resting_order_id} cancelled" in report and "close order #" in report
    wait_for(lambda: positions(desk) == (0, 0))
    assert order_state(desk.resting_order_id) == "cancelled"
