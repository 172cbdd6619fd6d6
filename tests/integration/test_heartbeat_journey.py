"""A trader opens the Heartbeat page and watches the simulator's market arrive through the feeds process:
simulator websocket -> `python -m feeds` -> Redis/Postgres -> SSE -> chart, then the venue drops the
socket and the feed is back on its own."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from core.candles.health import feed_status, stale_feeds
from tests.conftest import LOG_DIR, ROOT, process_env
from tests.feeds.conftest import wait_until

pytestmark = pytest.mark.browser


@pytest.fixture()
def feeds_process(sim, infra, redis_client):
    log = open(LOG_DIR / "feeds.log", "a")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "feeds", "--ws-url", sim.ws_url, "--rest-url", sim.url],
        cwd=ROOT,
        env=process_env(),
        stdout=log,
        stderr=log,
    )
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


def test_trader_watches_live_candles_and_the_feed_survives_a_drop(page, browser_login, sim, feeds_process):
    status = wait_until(lambda: (s := feed_status()) and s["connected"] and s.get("closed") and s, timeout=20)
    assert set(status["symbols"]) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    browser_login()
    page.goto("/heartbeat/?symbol=BTCUSDT&tf=1m")
    page.wait_for_selector("#chart[data-loaded]")
    assert int(page.get_attribute("#chart", "data-bars")) >= 1  # the backfill of the current 4h bucket
    page.wait_for_selector("#live-state.ok")
    # The simulator streams top of book every second: it reaches the page over SSE.
    expect(page.locator("#book-bid")).not_to_have_text("–", timeout=10_000)  # wait_for_function evals: the CSP refuses
    assert float(page.locator("#book-bid").inner_text()) < float(page.locator("#book-ask").inner_text())
    page.wait_for_selector("#feed-state:has-text('connected')", timeout=10_000)

    reconnects = status["reconnects"]
    sim.set_faults(drop_ws_now=True)
    again = wait_until(
        lambda: (s := feed_status()) and s["reconnects"] > reconnects and s["connected"] and s, timeout=15
    )
    assert again["connected"] and stale_feeds() == []

    feeds_process.send_signal(signal.SIGTERM)
    assert feeds_process.wait(20) == 0
