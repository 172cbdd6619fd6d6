"""Trading page over the Flask test client: ticket checks, confirmation, real placement by a real worker,
open orders with cancel, history/trades with filters and CSV, portfolio, and the live event stream."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from decimal import Decimal

import pytest

from core.infra.bus import get_redis, order_events_channel
from core.infra.db import session_scope
from core.models import BrokerConnection
from tests.support import csrf_token_from
from tests.trading_support import make_trader

pytestmark = pytest.mark.slow


@pytest.fixture()
def trader(client, make_user, login, sim, redis_client):
    created = []

    def factory_user():
        user, password = make_user()
        created.append(password)
        return user, password

    trader = make_trader(lambda: factory_user(), sim)
    from core.infra.db import session_scope
    from core.models import User

    with session_scope() as session:
        username = session.get(User, trader.user_id).username
    assert login(username, created[0]).status_code == 302
    trader.token = csrf_token_from(client.get("/trading/").get_data(as_text=True))
    return trader


def _ticket(trader, **fields):
    return {
        "csrf_token": trader.token,
        "broker_id": str(trader.broker_id),
        "symbol": "BTCUSDT",
        "side": "buy",
        "type": "market",
        "size_mode": "quantity",
        "size": "0.01",
    } | fields


def _wait(trader, order_id, states, timeout=30):
    deadline = time.monotonic() + timeout
    while trader.reload(order_id).state not in states and time.monotonic() < deadline:
        time.sleep(0.05)
    return trader.reload(order_id).state


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"size": "0.0000001"}, "rounds to 0"),
        ({"size": "abc"}, "size must be a number"),
        ({"size": "-1"}, "positive"),
        ({"symbol": "NOPEUSDT"}, "unknown symbol NOPEUSDT"),
        ({"type": "limit"}, "a limit price is required"),
        ({"type": "limit", "price": "1e-9"}, "rounds to 0"),
        ({"size": "5000"}, "insufficient balance"),
        ({"size_mode": "percent", "size": "150"}, "at most 100"),
        (
            {"side": "sell", "type": "stop_loss", "stop_price": "100000000"},
            "a sell stop at 100000000 would trigger at once",
        ),
        ({"side": "buy", "type": "stop_loss", "stop_price": "1"}, "a buy stop must be above it"),
        ({"side": "sell", "type": "take_profit", "stop_price": "1"}, "a sell take-profit must be above it"),
        ({"side": "sell", "type": "oco", "price": "1", "stop_price": "2"}, "a sell take-profit at 1 would trigger"),
        ({"side": "sell", "type": "trailing_stop"}, "a trailing stop needs its trail"),
        ({"side": "sell", "type": "trailing_stop", "trail_pct": "two"}, "trail pct must be a number"),
        ({"side": "sell", "type": "trailing_stop", "trail_pct": "30"}, "the trail must be between 0.1 % and 20 %"),
        ({"side": "sell", "type": "tp_ladder", "ladder": "+2%:60, +4%:60"}, "they must add up to exactly 100 %"),
        ({"side": "sell", "type": "tp_ladder", "ladder": "+2%:100"}, "2 to 10 rungs, not 1"),
        ({"side": "sell", "type": "tp_ladder", "ladder": "<b>x</b>:50, 1:50"}, "rung 1 target must be a number"),
    ],
)
def test_ticket_live_check_explains_bad_input(client, trader, fields, message):
    html = client.post("/trading/check", data=_ticket(trader, **fields)).get_data(as_text=True)
    assert message in html, html


def test_ticket_sizes_quote_amount_and_percent_with_the_symbol_rules(client, trader):
    quote = client.post("/trading/check", data=_ticket(trader, size_mode="quote", size="100")).get_data(as_text=True)
    assert "✓ BUY 0.00" in quote and "BTC market" in quote
    percent = client.post("/trading/check", data=_ticket(trader, side="sell", size_mode="percent", size="50")).get_data(
        as_text=True
    )
    assert "SELL 0.5 BTC" in percent


def test_confirmed_ticket_is_placed_by_the_worker_and_shows_in_history(client, trader, celery_worker_process):
    first = client.post("/trading/orders", data=_ticket(trader))
    assert first.status_code == 200 and "Confirm order" in first.get_data(as_text=True)
    placed = client.post("/trading/orders", data=_ticket(trader, confirmed="1"))
    assert placed.status_code == 302
    order_id = max(o.id for o in [trader.reload(i) for i in _order_ids(trader)])
    assert _wait(trader, order_id, {"filled"}) == "filled"
    assert len(trader.at_sim(order_id)) == 1
    history = client.get("/trading/history?symbol=BTCUSDT&side=buy").get_data(as_text=True)
    assert f'/trading/orders/{order_id}">{order_id}</a></td>' in history and "filled" in history
    rows = list(csv.DictReader(io.StringIO(client.get("/trading/history?format=csv").get_data(as_text=True))))
    assert rows[0]["id"] == str(order_id) and rows[0]["state"] == "filled" and rows[0]["quantity"] == "0.01"
    assert client.get("/trading/history?side=sell").get_data(as_text=True).count("No orders match") == 1
    deadline = time.monotonic() + 10
    while not trader.reload(order_id).fills and time.monotonic() < deadline:
        time.sleep(0.05)
    trades = list(csv.DictReader(io.StringIO(client.get("/trading/trades?format=csv").get_data(as_text=True))))
    assert sum(Decimal(t["quantity"]) for t in trades) == Decimal("0.01")


def _order_ids(trader):
    from sqlalchemy import select

    from core.infra.db import session_scope
    from core.models import Order

    with session_scope() as session:
        return list(session.scalars(select(Order.id).where(Order.user_id == trader.user_id)))


def test_open_order_is_listed_and_cancelled_from_the_page(client, trader, celery_worker_process):
    client.post("/trading/orders", data=_ticket(trader, type="limit", price="1000", confirmed="1"))
    order_id = max(_order_ids(trader))
    assert _wait(trader, order_id, {"open"}) == "open"
    listing = client.get("/trading/open").get_data(as_text=True)
    assert f'id="order-{order_id}"' in listing
    # From the page's htmx button: the open-orders panel comes back with the notice in place, not a redirect.
    answer = client.post(
        f"/trading/orders/{order_id}/cancel", data={"csrf_token": trader.token}, headers={"HX-Request": "true"}
    )
    panel = answer.get_data(as_text=True)
    assert answer.status_code == 200 and f"Cancel of order #{order_id} requested." in panel and "<html" not in panel
    assert _wait(trader, order_id, {"cancelled"}) == "cancelled"
    assert f'id="order-{order_id}"' not in client.get("/trading/open").get_data(as_text=True)


def test_portfolio_values_balances_in_usdt(client, trader):
    html = client.get(f"/trading/portfolio?broker={trader.broker_id}").get_data(as_text=True)
    assert "BTC" in html and "USDT" in html
    total = Decimal(html.split('id="portfolio-total">')[1].split("<")[0].replace(",", ""))  # money: 100,123.45
    assert total > Decimal("100000")  # 100000 USDT + 1 BTC at its last price


def test_event_stream_carries_order_state_changes(app, trader, client):
    received: list[str] = []
    response = client.get("/trading/events")
    chunks = response.response

    def read():
        for chunk in chunks:
            received.append(chunk.decode() if isinstance(chunk, bytes) else chunk)
            if "event: order" in "".join(received):
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.3)
    get_redis().publish(order_events_channel(trader.user_id), json.dumps({"order_id": 1, "state": "open"}))
    reader.join(5)
    text = "".join(received)
    assert "event: order" in text and '"state": "open"' in text


def test_another_users_order_cannot_be_cancelled(client, trader, make_user, login):
    order_id = trader.order(type="limit", price=Decimal("1000"))
    other, password = make_user()
    client.post("/logout", data={"csrf_token": trader.token})
    login(other.username, password)
    token = csrf_token_from(client.get("/trading/").get_data(as_text=True))
    assert client.post(f"/trading/orders/{order_id}/cancel", data={"csrf_token": token}).status_code == 404
    assert client.get(f"/trading/portfolio?broker={trader.broker_id}").status_code == 404


def test_the_trading_page_opens_on_the_connection_last_used(client, trader):
    with session_scope() as session:
        second = BrokerConnection(user_id=trader.user_id, venue="sim", label="AAA second", base_url=trader.sim.url)
        second.set_credentials("k" * 16, "s" * 24)
        session.add(second)
        session.flush()
        second_id = second.id

    def selected() -> int:
        html = client.get("/trading/").get_data(as_text=True)
        return int(re.search(r'<option value="(\d+)" selected>[^<]*\(sim\)', html).group(1))

    assert selected() == trader.broker_id  # the one the page last opened on, though "AAA second" sorts first
    client.get(f"/trading/?broker={second_id}")
    assert selected() == second_id  # remembered
    client.get("/trading/?broker=999999999")  # not one of the trader's: ignored, the remembered one stays
    assert selected() == second_id


def test_a_confirmed_ladder_places_one_order_per_rung_listed_in_open_orders(client, trader, celery_worker_process):
    ladder = _ticket(trader, side="sell", type="tp_ladder", size="0.02", ladder="+10%:50, +20%:50")
    assert "take-profit ladder: 0.01 at" in client.post("/trading/check", data=ladder).get_data(as_text=True)
    assert "Confirm order" in client.post("/trading/orders", data=ladder).get_data(as_text=True)
    assert client.post("/trading/orders", data=ladder | {"confirmed": "1"}).status_code == 302
    ids = sorted(_order_ids(trader))
    assert len(ids) == 2 and all(_wait(trader, i, {"open"}) == "open" for i in ids)
    listed = client.get("/trading/open").get_data(as_text=True)
    assert all(f'id="order-{i}"' in listed for i in ids) and listed.count(">ladder</span>") == 2


def test_an_emulated_trailing_stop_shows_where_it_stands_in_open_orders(client, trader):
    from core.models import TrailingWatch

    order_id = trader.order(side="sell", type="trailing_stop", quantity=Decimal("0.01"), trail_pct=Decimal("5"))
    with session_scope() as session:
        session.add(TrailingWatch(order_id=order_id, extreme=Decimal("70000")))
    listed = client.get("/trading/open").get_data(as_text=True)
    assert "watched, triggers at 66,500.00" in listed and "trail 5.00%" in listed
