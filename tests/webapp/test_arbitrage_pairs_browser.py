"""The Arbitrage page with two pairs in one engine (arb/runner.py against the perp simulators): a row per pair,
each pair's own controls; pausing one from the page leaves the other running."""

from __future__ import annotations

import asyncio
import secrets
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect

from arb.runner import PairsRunner, status_publisher
from arb.venues import build_venues
from core import arb_commands
from core.infra.bus import get_redis
from tests.arb.test_pairs import market, pairs_config

SCREENSHOT = Path("/tmp/arbitrage-pairs.png")


@pytest.mark.browser
def test_an_admin_pauses_one_pair_and_the_other_keeps_running_in_chromium(
    page, browser_login, redis_client, infra, sims
):
    from tests.arb.conftest import new_credentials

    tag = secrets.token_hex(3)
    btc, eth = f"btc-{tag}", f"eth-{tag}"
    creds = new_credentials(sims)
    configs = pairs_config(
        sims, {"pair": btc, **market("BTC")}, {"pair": eth, **market("ETH"), "size": "0.1", "max_position": "0.1"}
    )
    started, stop = threading.Event(), threading.Event()

    async def run_engine():
        runner = PairsRunner(
            configs,
            await build_venues(configs[0], creds, configs),
            status_publisher([btc, eth], get_redis),
            lambda: arb_commands.take(get_redis()),
        )
        await runner.start()
        started.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await runner.stop()

    thread = threading.Thread(target=lambda: asyncio.run(run_engine()), daemon=True)
    thread.start()
    try:
        assert started.wait(30)
        browser_login(is_admin=True)
        page.goto("/arbitrage/")
        rows = page.locator("#arb-pairs tbody tr")
        expect(rows).to_have_count(2)
        expect(page.locator(f"#arb-pairs tr[data-pair='{btc}'] [data-pair-state]")).to_have_text("running")
        expect(page.locator(f"#arb-pairs tr[data-pair='{eth}'] [data-pair-state]")).to_have_text("running")
        assert "ETH-PERP" in page.locator(f"#arb-pairs tr[data-pair='{eth}']").inner_text()

        page.once("dialog", lambda d: d.accept() if f"Pause the pair {eth}?" in d.message else d.dismiss())
        page.click(f"#arb-pair-controls tr[data-pair='{eth}'] button[data-action='pause']")
        expect(page.locator("#arb-control-result")).to_contain_text(f"{eth}: queued (action #")
        expect(page.locator(f"#arb-pairs tr[data-pair='{eth}'] [data-pair-state]")).to_have_text("paused")
        expect(page.locator(f"#arb-pairs tr[data-pair='{btc}'] [data-pair-state]")).to_have_text("running")

        page.click(f"#arb-pairs tr[data-pair='{eth}'] a")  # the pair's detail
        page.wait_for_url(f"**/arbitrage/?pair={eth}")
        expect(page.locator("#arb-state")).to_have_text("paused")
        expect(page.locator("#arb-reason")).to_contain_text("paused by ")
        expect(page.locator("#arb-actions tbody tr").first.locator(".pill")).to_have_text("done: entries paused")
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    finally:
        stop.set()
        thread.join(30)
