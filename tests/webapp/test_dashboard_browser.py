"""Journeys in Chromium on the real stack (simulator, Celery worker, the heartbeat's stored candles and top of
book as the feeds write them): the dashboard at one glance, closing a position from it at market; the Trading
page's market — chart with our fills and open orders, last price, 24 h change, best bid and ask, live — and
closing the position from there."""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, select

from core import brokers
from core.candles.candle import ClosedCandle
from core.candles.store import candle_event, store_candles
from core.infra.bus import book_key, live_channel
from core.infra.db import get_engine, session_scope, utcnow
from core.models import Bot, BrokerConnection, Candle, Fill, Order, Webhook, WebhookAlert
from core.notifications.center import notify
from core.orders import placement, venue_balances
from tests.trading_support import make_trader

pytestmark = pytest.mark.browser

LIVE_TIMEOUT_MS = 20_000
MINUTE = 60_000
D1 = Decimal(1)
SCREENSHOTS = Path("/tmp")


def _watch_problems(page) -> list[str]:
    """No console error and no failed request on the way (the favicon included)."""
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))
    return problems


def _heartbeat(redis_client, price: Decimal) -> list[ClosedCandle]:
    """What the feeds store for sim BTCUSDT: 1m candles up to the last minute, the top of book."""
    now = int(time.time() * 1000)
    last = now - now % MINUTE - MINUTE
    candles = [
        ClosedCandle(
            "sim", "BTCUSDT", "1m", last - i * MINUTE, price - i - 1, price - i + 2, price - i - 3, price - i, D1
        )
        for i in range(30)
    ]
    store_candles(get_engine(), candles)
    top = {"symbol": "BTCUSDT", "bid": str(price - 1), "bid_qty": "1", "ask": str(price + 1), "ask_qty": "1", "u": 1}
    redis_client.set(book_key("sim", "BTCUSDT"), json.dumps(top))
    return candles


def _placed(order_id: int) -> int:
    placement.place(order_id)
    return order_id


def _fills_of(order_id: int) -> list[Fill]:
    deadline = time.monotonic() + LIVE_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        with session_scope() as session:
            fills = list(session.scalars(select(Fill).where(Fill.order_id == order_id)))
        if fills:
            return fills
        time.sleep(0.1)
    raise AssertionError(f"order #{order_id} has no fill")


@pytest.fixture()
def trader(page, browser_login, make_user, sim, redis_client):
    """A trader logged in through the browser, on a simulator connection whose balances reconciliation has
    read (10,000 USDT), who then bought 0.01 BTC at market; the heartbeat has stored candles and a book."""
    user, _ = browser_login()
    trader = make_trader(make_user, sim, {"USDT": "10000"}, user=user)
    with session_scope() as session:
        broker = session.get_one(BrokerConnection, trader.broker_id)
        broker.created_at = utcnow() - timedelta(minutes=30)  # the curve starts with the connection
        exchange = brokers.exchange_for(broker)
        venue_balances.compare(
            session, trader.broker_id, venue_balances.snapshot(exchange), venue_balances.market_assets(exchange)
        )
    price = brokers.last_price(exchange, "BTCUSDT")
    stored = _heartbeat(redis_client, price)
    _fills_of(_placed(trader.order()))
    yield trader, price
    redis_client.delete(book_key("sim", "BTCUSDT"))
    with session_scope() as session:  # the next test file of this worker finds the candles it stored, not these
        times = [candle.open_time for candle in stored]
        session.execute(
            delete(Candle).where(
                Candle.venue == "sim", Candle.symbol == "BTCUSDT", Candle.timeframe == "1m", Candle.open_time.in_(times)
            )
        )


def test_dashboard_shows_everything_at_a_glance_and_closes_a_position(page, trader, celery_worker_process):
    trader, price = trader
    user_id, broker_id = trader.user_id, trader.broker_id
    problems = _watch_problems(page)
    with session_scope() as session:
        bot = Bot(user_id=user_id, name="Trend", broker_id=broker_id, venue="sim", symbol="ETHUSDT", timeframe="1h")
        bot.state, bot.last_decision = "running", {"action": "hold", "note": "fast SMA below slow"}
        webhook = Webhook(
            user_id=user_id,
            broker_id=broker_id,
            name="TV",
            token_hash=secrets.token_hex(32),
            token_enc="x",
            size_value=1,
        )
        session.add_all([bot, webhook])
        session.flush()
        session.add(
            WebhookAlert(webhook_id=webhook.id, status="rejected", http_status=409, action="buy", reason="paused")
        )
    notify(user_id, "warning", "bots", "Trend: source stale")

    page.goto("/")
    total = page.locator("#equity-total")
    expect(total).to_contain_text(",")  # 10,000-ish in dollars, thousands separated
    equity = Decimal(total.inner_text().split()[0].replace(",", ""))
    assert Decimal("9900") < equity < Decimal("10000")  # 10,000 less the fees and half the spread
    expect(page.locator("#equity-chart canvas").first).to_be_visible()
    # One point a minute since the connection was made (30 min ago), at the stored closes, and one for now.
    expect(page.locator("#equity-chart")).to_have_attribute("data-points", re.compile(r"^3[0-2]$"))
    row = page.locator("#positions tr.position")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Manual")
    expect(row.locator(".mark")).to_have_text(f"{price:,.2f}")  # the tick of sim BTCUSDT: 0.01
    expect(page.locator("#bots tr[data-bot]")).to_contain_text("hold — fast SMA below slow")
    expect(page.locator("#alerts")).to_contain_text("TV buy")
    expect(page.locator("#notes")).to_contain_text("Trend: source stale")
    expect(page.locator("#open-orders")).to_contain_text("No open orders")
    expect(page.locator("#platform-status")).to_be_visible()
    expect(page.locator("#live-state")).to_have_text("live")
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    page.on("dialog", lambda dialog: dialog.accept())
    row.locator("button:has-text('Close at market')").click()
    expect(page.locator(".flash.success")).to_contain_text("submitted")
    expect(page.locator("#positions")).to_contain_text("No open position", timeout=LIVE_TIMEOUT_MS)
    with session_scope() as session:
        closes = session.scalars(select(Order).where(Order.user_id == user_id, Order.side == "sell")).all()
        assert [(o.type, o.source, o.state) for o in closes] == [("market", "manual", "filled")]
    page.screenshot(path=str(SCREENSHOTS / "dashboard-closed.png"), full_page=True)
    assert problems == []


def test_trading_page_shows_the_market_with_our_orders_live(page, trader, redis_client, celery_worker_process):
    trader, price = trader
    broker_id = trader.broker_id
    problems = _watch_problems(page)
    below = (price * Decimal("0.9")).quantize(Decimal("0.01"))
    open_id = _placed(trader.order(type="limit", price=below))

    page.goto(f"/trading/?broker={broker_id}&symbol=BTCUSDT")
    chart = page.locator("#chart")
    expect(chart).to_have_attribute("data-loaded", "1")
    expect(chart).to_have_attribute("data-markers", "1")  # our buy
    expect(chart).to_have_attribute("data-lines", "1")  # our open limit order
    expect(page.locator("#best-bid")).to_have_text(f"{price - 1:,.2f}")
    expect(page.locator("#best-ask")).to_have_text(f"{price + 1:,.2f}")
    expect(page.locator("#last-price")).to_have_text(f"{price:,.2f}")  # the mid of the book
    expect(page.locator("#day-change")).to_contain_text("%")
    position = page.locator("#market-positions tr.position")
    expect(position).to_have_count(1)

    # A forming minute on the heartbeat moves the chart and the last price without a reload.
    now = int(time.time() * 1000)
    moved = price + Decimal("12.34")
    forming = ClosedCandle("sim", "BTCUSDT", "1m", now - now % MINUTE, price, moved, price, moved, Decimal(1))
    page.evaluate("window.__sameDocument = true")
    deadline = time.monotonic() + LIVE_TIMEOUT_MS / 1000
    while page.get_attribute("#chart", "data-last-close") != str(float(moved)) and time.monotonic() < deadline:
        redis_client.publish(live_channel("sim", "BTCUSDT"), candle_event(forming, "forming"))
        time.sleep(0.3)
    expect(page.locator("#last-price")).to_have_text(f"{moved:,.2f}")
    # A new top of book, stored and published as the feeds do it, reaches the summary without a reload.
    top = {"symbol": "BTCUSDT", "bid": str(moved - 1), "bid_qty": "1", "ask": str(moved + 1), "ask_qty": "1", "u": 2}
    redis_client.set(book_key("sim", "BTCUSDT"), json.dumps(top))
    redis_client.publish(live_channel("sim", "BTCUSDT"), json.dumps({"type": "book", "venue": "sim", **top}))
    expect(page.locator("#best-bid")).to_have_text(f"{moved - 1:,.2f}")
    expect(page.locator("#best-ask")).to_have_text(f"{moved + 1:,.2f}")
    expect(page.locator("#last-price")).to_have_text(f"{moved:,.2f}")  # the live bar's, not the stored mid

    # Cancelling the open order takes its line off the chart (the order stream tells the page).
    page.locator(f"#order-{open_id} button:has-text('Cancel')").click()
    expect(chart).to_have_attribute("data-lines", "0", timeout=LIVE_TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument") is True
    page.screenshot(path=str(SCREENSHOTS / "trading-market.png"), full_page=True)

    page.on("dialog", lambda dialog: dialog.accept())
    position.locator("button:has-text('Close at market')").click()
    expect(page.locator(".flash.success")).to_contain_text("submitted")
    assert "/trading/" in page.url and "symbol=BTCUSDT" in page.url
    expect(page.locator("#market-positions")).to_contain_text("No open position", timeout=LIVE_TIMEOUT_MS)
    assert problems == []
