"""The dashboard's fragments on the real database and Redis: equity from the stored balances and the fills
since, open positions valued at the stored top of book, the close of one position recorded under its owner,
and nothing of one trader's ever shown to (or closable by) another."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.infra.bus import book_key
from core.infra.db import session_scope, utcnow
from core.models import Order, Webhook, WebhookAlert
from core.notifications.center import notify
from core.orders import venue_balances
from tests.ledger_support import Ledger
from tests.support import csrf_token_from

D = Decimal


@pytest.fixture()
def book(redis_client):
    """The heartbeat's last top of book for BTCUSDT (mid 51,000), as the feeds store it."""
    key = book_key("sim", "BTCUSDT")
    redis_client.set(key, json.dumps({"bid": "50990", "ask": "51010", "symbol": "BTCUSDT"}))
    yield
    redis_client.delete(key)


def _trader_with_a_position(make_user) -> tuple:
    """A trader whose balances were read (10,000 USDT) and who then bought 0.1 BTC at 50,000 by hand and
    0.2 BTC at 50,500 with a bot."""
    user, password = make_user()
    ledger = Ledger(user.id)
    broker_id = ledger.broker("A-sim")
    with session_scope() as session:
        seen = venue_balances.Snapshot(utcnow() - timedelta(minutes=10), {"USDT": D("10000")})
        venue_balances.compare(session, broker_id, seen, lambda symbol: ("BTC", "USDT"))
    ledger.trade(broker_id, "buy", "0.1", "50000", utcnow() - timedelta(minutes=5))
    bot_ref = ledger.bot(broker_id, "Trend")
    ledger.trade(broker_id, "buy", "0.2", "50500", utcnow() - timedelta(minutes=4), source="bot", source_ref=bot_ref)
    return user, password, broker_id, bot_ref


def _log_in(login, user, password) -> None:
    assert login(user.username, password).status_code == 302


def test_dashboard_values_equity_and_positions_and_closes_one_under_its_owner(
    client, make_user, login, book, monkeypatch
):
    user, password, broker_id, bot_ref = _trader_with_a_position(make_user)
    _log_in(login, user, password)

    page = client.get("/").get_data(as_text=True)
    assert 'id="equity-chart"' in page and 'hx-get="/dashboard/positions"' in page
    equity = client.get("/dashboard/equity").get_data(as_text=True)
    # 10,000 − 5,000 − 10,100 USDT + 0.3 BTC at 51,000 = 10,200.
    assert '<p class="big" id="equity-total">10,200.00' in equity
    curve = client.get("/dashboard/equity.json").get_json()
    assert curve["timeframe"] == "1m" and curve["points"][-1]["value"] == 10200.0

    positions = client.get("/dashboard/positions").get_data(as_text=True)
    assert positions.count('class="position"') == 2
    assert "Bot · Trend" in positions and "Manual" in positions
    assert positions.count(">51,000<") == 2  # the mark: the mid of the stored top of book
    assert positions.count(">100.00 <small") == 2  # (51,000 − 50,000) × 0.1 and (51,000 − 50,500) × 0.2

    queued = []
    monkeypatch.setattr("webapp.home.dispatch.enqueue_order", lambda order_id: queued.append(order_id) or False)
    token = csrf_token_from(page)
    form = {"csrf_token": token, "broker_id": broker_id, "symbol": "BTCUSDT", "source": f"bot:{bot_ref}", "nonce": "n1"}
    answer = client.post("/positions/close", data=form)
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    with session_scope() as session:
        order = session.scalars(select(Order).where(Order.user_id == user.id, Order.state == "new")).one()
        assert (order.side, order.type, order.quantity, order.source, order.source_ref) == (
            "sell",
            "market",
            D("0.2"),
            "bot",
            bot_ref,
        )
    assert queued == [order.id]
    again = client.post("/positions/close", data=form, follow_redirects=True).get_data(as_text=True)
    assert "already sent once" in again  # a double click sends one close


def test_another_trader_sees_none_of_it_and_cannot_close_it(client, make_user, login, book):
    owner, _, broker_id, bot_ref = _trader_with_a_position(make_user)
    with session_scope() as session:
        webhook = Webhook(
            user_id=owner.id, broker_id=broker_id, name="OwnerHook", token_hash="h" * 64, token_enc="x", size_value=1
        )
        session.add(webhook)
        session.flush()
        session.add(WebhookAlert(webhook_id=webhook.id, status="accepted", http_status=202, action="buy"))
    notify(owner.id, "warning", "bots", "Owner's private notice")
    other, password = make_user()
    _log_in(login, other, password)

    fragments = "".join(
        client.get(path).get_data(as_text=True)
        for path in ("/", "/dashboard/equity", "/dashboard/positions", "/dashboard/bots", "/dashboard/activity")
    )
    for secret in ("A-sim", "Trend", "OwnerHook", "Owner's private notice", "BTCUSDT"):
        assert secret not in fragments
    assert client.get("/dashboard/equity.json").get_json()["points"] == []
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    form = {"csrf_token": token, "broker_id": broker_id, "symbol": "BTCUSDT", "source": f"bot:{bot_ref}"}
    answer = client.post("/positions/close", data=form, follow_redirects=True).get_data(as_text=True)
    assert "Nothing closed: no open position on BTCUSDT" in answer
    for path in ("summary", "positions", "overlay.json"):  # the Trading page's market of A's broker: not found
        assert client.get(f"/trading/market/{path}?broker={broker_id}&symbol=BTCUSDT").status_code == 404
    with session_scope() as session:
        assert session.scalars(select(Order).where(Order.state == "new", Order.broker_id == broker_id)).all() == []


@pytest.mark.parametrize(
    "form",
    [
        {"broker_id": "x", "symbol": "BTCUSDT", "source": "manual"},
        {"broker_id": "1", "symbol": "<b>" * 20, "source": "manual"},
        {"symbol": "BTCUSDT", "source": "bot:1 OR 1=1"},
        {},
    ],
)
def test_a_close_of_nothing_says_so_and_records_nothing(client, logged_in, form):
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    page = client.post("/positions/close", data={"csrf_token": token, **form}, follow_redirects=True)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Nothing closed: no open position on" in text and "<b><b>" not in text
    with session_scope() as session:
        assert session.scalars(select(Order).where(Order.user_id == logged_in.id)).all() == []


def test_a_book_a_market_order_cannot_close_into_is_left_to_the_ticket(client, make_user, login, book):
    user, password = make_user()
    ledger = Ledger(user.id)
    broker_id = ledger.broker("O-sim")
    ledger.trade(broker_id, "buy", "0.1", "50000", utcnow() - timedelta(minutes=5), source="oco")
    _log_in(login, user, password)
    positions = client.get("/dashboard/positions").get_data(as_text=True)
    assert 'data-source="oco"' in positions and "Close at market" not in positions
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    form = {"csrf_token": token, "broker_id": broker_id, "symbol": "BTCUSDT", "source": "oco"}
    answer = client.post("/positions/close", data=form, follow_redirects=True).get_data(as_text=True)
    assert "Nothing closed: the BTCUSDT position of OCO is closed from the order ticket" in answer
    with session_scope() as session:
        assert session.scalars(select(Order).where(Order.user_id == user.id, Order.state == "new")).all() == []
