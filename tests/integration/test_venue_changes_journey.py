# ruff: noqa: F811  (fixtures imported from tests.stop_support are parameters here)
"""Journey: what a trader does at the venue, outside Aristobot, does not go unseen.

A trader's webhook holds BTC with its stop-loss resting at the venue. In the exchange's app (the sim's
Binance face with the account's own keys) they place a limit order, cancel the stop, and buy ETH. The
next reconciliation pass, run by the real maintenance worker, records the limit order as external (on
the trading page, with the venue's raw answer on its page), flags the stop on the webhook's page and
places it again through the real `orders` worker, tells of the ETH and USDT that moved, and the bell
has all three."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from core import tasks
from core.exchanges.models import OrderRequest
from core.infra.bus import get_redis, reconcile_swept
from core.infra.db import new_session
from core.models import Notification, Order, VenueFinding
from tests.stop_support import order_state, protected_entry, signed_in_trader, wait_for  # noqa: F401


def _pass(broker_id: int) -> dict:
    from workers.celery_app import app

    get_redis().delete(reconcile_swept(broker_id))  # as once SWEEP_EVERY has passed: balances are checked too
    return tasks.send_reconcile_broker(broker_id, app=app).get(timeout=120)


def test_what_a_trader_does_at_the_venue_is_found_told_and_repaired(signed_in_trader, celery_worker_process):
    trader, browser = signed_in_trader
    first = _pass(trader.broker_id)  # the balances Aristobot agrees with
    assert (first["external"], first["balance_drifts"], first["errors"]) == (0, 0, [])
    webhook_id, stop_id = protected_entry(trader)

    by_hand = trader.by_hand()
    with new_session() as session:
        stop_client_id = session.get(Order, stop_id).client_order_id
    by_hand.place_order(
        OrderRequest("app_1", "BTCUSDT", "buy", "limit", quantity=Decimal("0.01"), price=Decimal("1000"))
    )
    by_hand.cancel_order("BTCUSDT", client_order_id=stop_client_id)
    by_hand.place_order(OrderRequest("app_2", "ETHUSDT", "buy", "market", quantity=Decimal("0.5")))

    report = _pass(trader.broker_id)
    assert (report["external"], report["exits_flagged"], report["balance_drifts"]) == (1, 1, 2)

    open_orders = browser.get("/trading/open").get_data(as_text=True)
    with new_session() as session:
        external = session.scalar(select(Order).where(Order.user_id == trader.user_id, Order.source == "external"))
        finding = session.scalar(select(VenueFinding).where(VenueFinding.order_id == stop_id))
        titles = session.scalars(select(Notification.title).where(Notification.user_id == trader.user_id)).all()
    assert f"/trading/orders/{external.id}" in open_orders and "external" in open_orders
    page = browser.get(f"/trading/orders/{external.id}").get_data(as_text=True)
    assert "What the venue answered" in page and "app_1" in page and trader.api_key not in page

    assert finding.webhook_id == webhook_id and finding.replacement_order_id
    wait_for(lambda: order_state(finding.replacement_order_id) == "open")  # placed again by the worker
    flagged = browser.get(f"/webhooks/{webhook_id}").get_data(as_text=True)
    assert "Changed at the venue" in flagged and f"placed again as #{finding.replacement_order_id}" in flagged
    stop_page = browser.get(f"/trading/orders/{stop_id}").get_data(as_text=True)
    assert "Found at the venue" in stop_page and "CANCELED" in stop_page

    assert any("placed outside Aristobot" in title for title in titles)
    assert any(title.startswith("Protective stop loss of webhook") for title in titles)
    assert sorted(t.split(": ")[1].split(" ")[0] for t in titles if t.startswith("Balance changed")) == ["ETH", "USDT"]
    bell = browser.get("/notifications/").get_data(as_text=True)
    assert "placed outside Aristobot" in bell and "Balance changed at the venue" in bell

    quiet = _pass(trader.broker_id)  # told once: nothing new at the venue since
    assert (quiet["external"], quiet["exits_flagged"], quiet["balance_drifts"]) == (0, 0, 0)
