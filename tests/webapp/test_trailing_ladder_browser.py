"""Journey in Chromium on the real stack (simulator, Celery worker, SSE): a trader places a trailing stop and a
two-rung take-profit ladder from the Trading ticket, sees them in open orders, the market rises then falls (prints
injected into the simulator), and the stop trails the high, then triggers and sells."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from core import brokers, tasks
from core.infra.db import session_scope
from core.models import BrokerConnection, Order
from tests.webapp.test_trading_browser import LIVE_TIMEOUT_MS, _connected_trader

pytestmark = pytest.mark.browser

SCREENSHOT = Path("/tmp/trading-trailing-ladder.png")


def _orders(user_id: int) -> list[Order]:
    with session_scope() as session:
        orders = list(session.scalars(select(Order).where(Order.user_id == user_id).order_by(Order.id)))
        session.expunge_all()
        return orders


def _place(page, **fields: str) -> list[int]:
    """Fill the ticket as a trader does, review, confirm; the ids of the orders the page says it submitted."""
    page.select_option("#ticket select[name=type]", fields.pop("type"))
    page.check(f"#ticket input[name=side][value={fields.pop('side')}]")
    page.select_option("#ticket select[name=size_mode]", "quantity")
    for name in ("size", "trail_pct", "ladder", "stop_price"):
        page.fill(f"#ticket input[name={name}]", fields.get(name, ""))
    expect(page.locator("#ticket-check .ok-summary")).to_contain_text(fields["summary"])
    page.click("#review")
    expect(page.locator("#confirm-summary")).to_contain_text(fields["summary"])
    page.click("button:has-text('Place order')")
    flashes = page.locator(".flash.success")
    expect(flashes.first).to_contain_text("submitted")
    return [int(n) for n in re.findall(r"Order #(\d+) submitted", " ".join(flashes.all_inner_texts()))]


def test_a_trailing_stop_and_a_ladder_from_the_ticket_trail_then_trigger(
    page, browser_login, sim, celery_worker_process
):
    user, broker_id, _ = _connected_trader(browser_login, sim, {"USDT": "10000", "BTC": "1"})
    with session_scope() as session:
        last = brokers.last_price(brokers.exchange_for(session.get(BrokerConnection, broker_id)), "BTCUSDT")
    page.goto("/trading/")

    # Bad input is explained before anything is recorded.
    page.select_option("#ticket select[name=type]", "trailing_stop")
    page.fill("#ticket input[name=size]", "0.1")
    page.fill("#ticket input[name=trail_pct]", "35")
    expect(page.locator("#ticket-check .error")).to_contain_text("the trail must be between 0.1 % and 20 %")
    page.select_option("#ticket select[name=type]", "tp_ladder")
    page.fill("#ticket input[name=trail_pct]", "")
    page.fill("#ticket input[name=ladder]", "+10%:50, +20%:40")
    expect(page.locator("#ticket-check .error")).to_contain_text("they must add up to exactly 100 %")
    assert _orders(user.id) == []

    # A 20 % trail: the simulator's own synthetic prints stay well inside it.
    [stop_id] = _place(
        page, type="trailing_stop", side="sell", size="0.1", trail_pct="20", summary="trailing stop 20 %"
    )
    rung_ids = _place(
        page, type="tp_ladder", side="sell", size="0.2", ladder="+10%:50, +20%:50", summary="take-profit ladder: 0.1 at"
    )
    assert len(rung_ids) == 2
    page.evaluate("window.__sameDocument = true")
    stop_row = page.locator(f"#open-orders tr#order-{stop_id}")
    expect(stop_row.locator(".state")).to_have_attribute("data-state", "open", timeout=LIVE_TIMEOUT_MS)
    expect(stop_row).to_contain_text("trailing stop")
    expect(stop_row).to_contain_text("trail 20.00%")
    for rung_id in rung_ids:
        rung = page.locator(f"#open-orders tr#order-{rung_id}")
        expect(rung.locator(".state")).to_have_attribute("data-state", "open", timeout=LIVE_TIMEOUT_MS)
        expect(rung).to_contain_text("ladder")
    rungs = [o for o in _orders(user.id) if o.id in rung_ids]
    assert [o.quantity for o in rungs] == [Decimal("0.1"), Decimal("0.1")] and len({o.ladder_group for o in rungs}) == 1
    assert all(o.price > last for o in rungs)

    # The market rises 8 % (short of the first rung), then falls 17 % from that high: the stop, which followed
    # the high, is still 3 % away; a fall of 21 % from the high triggers it.
    high = (last * Decimal("1.08")).quantize(Decimal("0.01"))
    sim.inject_print("BTCUSDT", high)
    sim.inject_print("BTCUSDT", (high * Decimal("0.83")).quantize(Decimal("0.01")))
    tasks.send_reconcile_broker(broker_id)  # what beat asks every 30 s
    expect(stop_row.locator(".state")).to_have_attribute("data-state", "open")
    sim.inject_print("BTCUSDT", (high * Decimal("0.79")).quantize(Decimal("0.01")))
    tasks.send_reconcile_broker(broker_id)
    expect(stop_row).to_have_count(0, timeout=LIVE_TIMEOUT_MS)  # left the open orders live
    recent = page.locator(f"#recent-orders tr[data-order='{stop_id}'] .state")
    expect(recent).to_have_attribute("data-state", "filled", timeout=LIVE_TIMEOUT_MS)
    for rung_id in rung_ids:  # the ladder's rungs still rest at their targets
        expect(page.locator(f"#open-orders tr#order-{rung_id}")).to_have_count(1)
    assert page.evaluate("window.__sameDocument") is True
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    stop = next(o for o in _orders(user.id) if o.id == stop_id)
    assert (stop.type, stop.state, stop.filled_quantity, stop.trail_pct) == (
        "trailing_stop",
        "filled",
        Decimal("0.1"),
        Decimal("20"),
    )
