"""Arbitrage page: what the arb process publishes in Redis, and its intents in Postgres."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time

import pytest
from playwright.sync_api import expect

from arb.__main__ import publish_status
from arb.config import parse_arb_config
from arb.engine import ArbEngine
from bench.arb import apply_frame, generate_stream
from core.infra.bus import ARB_STATUS


def engine_with_books(pair: str = "web-test") -> ArbEngine:
    """A real engine fed a real frame stream (no venues): its snapshot is what the process publishes."""
    engine = ArbEngine(parse_arb_config({"pair": pair}), {}, None)
    for venue, raw in generate_stream(40):
        apply_frame(engine, venue, raw)
    engine.evaluate()
    engine.emit("spread_detected", direction="long_vest_short_paradex", spread_bps="12.5")
    engine.emit("unhedged_position", level=40, venue="vest", net="0.01")
    return engine


def test_the_page_needs_a_login(client):
    response = client.get("/arbitrage/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.fixture()
def logged_in_admin(make_user, login):
    admin, password = make_user(is_admin=True)
    assert login(admin.username, password).status_code == 302
    return admin


def test_traders_neither_see_nor_reach_the_engine(client, logged_in):
    assert "Arbitrage" not in client.get("/").get_data(as_text=True)
    assert client.get("/arbitrage/").status_code == 404
    assert client.get("/arbitrage/status").status_code == 404


def test_without_a_running_process_the_page_says_so(client, logged_in_admin, redis_client):
    html = client.get("/arbitrage/").get_data(as_text=True)
    assert "The arb process is not running" in html and 'hx-get="/arbitrage/status"' in html


def test_published_status_shows_spreads_books_position_and_events(client, logged_in_admin, redis_client):
    engine = engine_with_books()
    publish_status(engine.snapshot())
    html = client.get("/arbitrage/status").get_data(as_text=True)
    snapshot = json.loads(redis_client.get(ARB_STATUS))
    for direction, edge in snapshot["spreads"]["entry_bps"].items():
        assert direction.replace("_", " ") in html and edge in html
    assert snapshot["books"]["vest"]["bid"] in html and snapshot["books"]["paradex"]["ask"] in html
    assert "spread_detected" in html and "unhedged_position" in html and 'class="error"' in html
    assert 'id="arb-state"' in html and "web-test" in html and "not running" not in html


def test_the_risk_card_shows_each_legs_distance_to_liquidation_and_each_accounts_margin_ratio(
    client, logged_in_admin, redis_client
):
    from decimal import Decimal as D

    from arb import risk
    from core.exchanges.perp.venue import PerpAccount

    engine = engine_with_books()
    assert "No risk read yet" in _status_html(client, engine)
    legs = [risk.LegRisk("vest", D("0.01"), D(60000), D(57000)), risk.LegRisk("paradex", D("-0.01"), D(60000), None)]
    accounts = [PerpAccount("vest", D(100), D(50), D(60)), PerpAccount("paradex", D(100), D(90), D(3))]
    engine.risk_view = risk.view(legs, accounts, risk.alarms(legs, accounts, engine.cfg.risk), time.time())
    html = _status_html(client, engine)
    assert 'id="arb-risk"' in html and "57000.00" in html and "5.00 %" in html and "0.6000" in html
    assert html.count('class="pill bad" data-risk="distance"') == 1  # 5 % is past the 7.5 % reduce line
    assert html.count('class="pill warn" data-risk="margin"') == 1 and "No risk read yet" not in html


def _status_html(client, engine: ArbEngine) -> str:
    publish_status(engine.snapshot())
    return client.get("/arbitrage/status").get_data(as_text=True)


def test_an_old_status_is_flagged_as_stuck(client, logged_in_admin, redis_client):
    snapshot = engine_with_books().snapshot() | {"ts": time.time() - 60}
    publish_status(snapshot)
    assert "the arb process may be stuck" in client.get("/arbitrage/status").get_data(as_text=True)


def test_garbage_in_redis_is_reported_not_a_crash(client, logged_in_admin, redis_client):
    redis_client.set(ARB_STATUS, "{not json")
    response = client.get("/arbitrage/status")
    assert response.status_code == 200 and "not valid JSON" in response.get_data(as_text=True)


@pytest.mark.browser
def test_trader_watches_a_spread_get_captured_live_in_chromium(page, browser_login, redis_client, infra, sims):
    from arb.store import ArbStore
    from arb.venues import build_venues
    from tests.arb.conftest import arb_config, inject, new_credentials

    creds, cfg = new_credentials(sims), arb_config(sims, max_position="0.01")
    started, stop = threading.Event(), threading.Event()

    async def run_engine():
        engine = ArbEngine(cfg, await build_venues(cfg, creds), ArbStore(), publish_status)
        await engine.start()
        started.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await engine.stop()

    thread = threading.Thread(target=lambda: asyncio.run(run_engine()), daemon=True)
    thread.start()
    try:
        assert started.wait(20)
        browser_login(is_admin=True)
        page.click("text=Arbitrage")
        page.wait_for_url("**/arbitrage/")
        expect(page.locator("#arb-state")).to_have_text("running", timeout=10_000)
        assert page.locator("#arb-books tbody tr").count() == 2
        assert "long vest short paradex" in page.locator("#arb-spreads").inner_text()
        expect(page.locator("#arb-risk tr[data-venue='paradex'] [data-risk='margin']")).to_have_text(
            re.compile(r"^\d+\.\d{4}$"), timeout=10_000
        )  # the risk watch's read of the venue account, live
        inject(sims, "paradex", 30, 0.6)
        entry = page.locator("#arb-events tr[data-event='entry_executed']").first
        expect(entry).to_contain_text("Entered long vest short paradex at a spread of", timeout=10_000)
        when = entry.locator("time")  # in the reader's time zone; the UTC it was served in is the tooltip
        expect(when).not_to_have_attribute("data-local", "time")
        assert re.fullmatch(r"\d\d:\d\d:\d\d( [AP]M)?", when.inner_text()) and when.get_attribute("title").endswith(
            " UTC"
        )
        page.wait_for_selector("#arb-intents td:text-is('entry')", timeout=10_000)
        assert page.locator("#arb-intents .pill").first.inner_text() in ("done", "sent", "pending")
    finally:
        stop.set()
        thread.join(20)
