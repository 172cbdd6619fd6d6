"""Journey in Chromium on the real stack: the simulator streams BTCUSDT's book, `python -m feeds` stores ten levels
a side, and the Trading page's depth view shows them live (asks above bids, running totals, bars), at desktop and
at phone width, without a console error; once the feed stops, the view says the book is stale."""

from __future__ import annotations

import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core.infra.bus import depth_key
from tests.conftest import LOG_DIR, ROOT, process_env
from tests.trading_support import make_trader

pytestmark = pytest.mark.browser

LIVE_TIMEOUT_MS = 30_000  # feeds start + first push + a 2 s poll, on a loaded 2-core machine
SCREENSHOTS = {"desktop": Path("/tmp/trading-depth.png"), "phone": Path("/tmp/phone-trading-depth.png")}
PHONE = {"width": 390, "height": 844}


@pytest.fixture()
def feeds_process(sim, infra, redis_client):
    """`python -m feeds` on the simulator's BTCUSDT, as the Procfile runs it."""
    redis_client.delete(depth_key("sim", "BTCUSDT"))
    log = open(LOG_DIR / "feeds.log", "a")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "feeds", "--symbols", "BTCUSDT", "--ws-url", sim.ws_url, "--rest-url", sim.url],
        cwd=ROOT,
        env=process_env(),
        stdout=log,
        stderr=log,
    )
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    redis_client.delete(depth_key("sim", "BTCUSDT"))


def _numbers(cells) -> list[Decimal]:
    return [Decimal(text.replace(",", "")) for text in cells.all_inner_texts()]


def test_the_depth_view_follows_the_simulators_book_and_says_when_it_is_stale(
    page, browser_login, make_user, sim, feeds_process
):
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    user, _ = browser_login()
    trader = make_trader(make_user, sim, user=user)
    page.goto(f"/trading/?broker={trader.broker_id}&symbol=BTCUSDT")

    ladder = page.locator("#market-depth #depth-ladder")
    expect(ladder.locator("tr.bid")).to_have_count(10, timeout=LIVE_TIMEOUT_MS)
    expect(ladder.locator("tr.ask")).to_have_count(10)
    expect(page.locator("#depth-stale")).to_have_count(0)
    asks = _numbers(ladder.locator("tr.ask td:nth-child(1)"))  # highest first, the best ask last
    bids = _numbers(ladder.locator("tr.bid td:nth-child(1)"))  # the best bid first
    assert asks == sorted(asks, reverse=True) and bids == sorted(bids, reverse=True) and bids[0] < asks[-1]
    totals = _numbers(ladder.locator("tr.bid td:nth-child(3)"))
    assert totals == sorted(totals) and totals[-1] > totals[0]  # running totals grow away from the spread
    assert all(len(str(p).partition(".")[2]) <= 2 for p in bids)  # prices on the 0.01 tick
    expect(ladder.locator("tr.spread")).to_contain_text("Spread")

    # The simulator's book moves every second; the view follows without a reload.
    before = ladder.inner_text()
    expect(ladder).not_to_have_text(before, timeout=LIVE_TIMEOUT_MS)
    page.screenshot(path=str(SCREENSHOTS["desktop"]), full_page=True)

    page.set_viewport_size(PHONE)
    expect(ladder.locator("tr.bid")).to_have_count(10)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    ladder.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS["phone"]), full_page=True)

    # The feed stops: the last stored book stays on screen, marked stale.
    feeds_process.send_signal(signal.SIGTERM)
    assert feeds_process.wait(20) == 0
    expect(page.locator("#depth-stale")).to_contain_text("Stale", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#depth-ladder.stale")).to_be_visible()
    assert errors == []
