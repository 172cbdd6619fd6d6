# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
"""Pause all and Flatten from every page's header, the admin's trading halt banner and the disable
checkbox, against the real app, Postgres, Redis, a Celery worker and the simulator."""

from __future__ import annotations

import json
from decimal import Decimal

from core.halt import HALTED, set_trading_halted
from core.infra.db import new_session, session_scope
from core.models import Bot, User, Webhook, WebhookAlert
from core.orders import placement
from tests.core.bots.fixtures import bot_trader, make_bot  # noqa: F401
from tests.stop_support import (  # noqa: F401
    flatten_report,
    make_desk,
    order_state,
    positions,
    signed_in_trader,
    wait_for,
)
from tests.support import csrf_token_from


def test_header_of_every_page_has_pause_all_and_flatten(signed_in_trader):
    _, client = signed_in_trader
    for url in ("/", "/bots/", "/webhooks/", "/trading/"):
        header = client.get(url).get_data(as_text=True).split("<main>")[0]
        assert "Pause all" in header and 'href="/stop/flatten"' in header, url


def test_pause_all_then_alerts_are_stored_and_refused_paused(signed_in_trader, make_bot):
    trader, client = signed_in_trader
    desk = make_desk(trader, make_bot)
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    answer = client.post("/stop/pause-all", data={"csrf_token": token}, follow_redirects=True)
    assert "paused 1 bot(s) and 1 webhook(s)" in answer.get_data(as_text=True)
    with new_session() as session:
        assert session.get(Bot, desk.bot_id).state == "paused" and session.get(Webhook, desk.webhook_id).paused
    alert = client.post(
        f"/webhooks/tv/{desk.webhook_token}", data=json.dumps({"action": "buy"}), content_type="application/json"
    )
    assert alert.status_code == 409 and "paused" in alert.get_data(as_text=True)
    with new_session() as session:
        stored = session.query(WebhookAlert).filter_by(webhook_id=desk.webhook_id, status="rejected").one()
        assert stored.reason.startswith("paused")
    assert client.post("/stop/pause-all").status_code == 400  # no CSRF token: refused


def test_flatten_confirmation_lists_then_flattens(signed_in_trader, make_bot, celery_worker_process):
    trader, client = signed_in_trader
    desk = make_desk(trader, make_bot)
    page = client.get("/stop/flatten").get_data(as_text=True)
    assert f"cancel order #{desk.resting_order_id}: buy limit BTCUSDT (open)" in page
    assert "sell 0.01998 BTCUSDT at market (bot" in page and "at market (webhook" in page
    assert positions(desk)[0] > 0  # the confirmation did nothing yet
    token = csrf_token_from(page)
    done = client.post("/stop/flatten", data={"csrf_token": token, "broker": str(trader.broker_id)})
    assert done.status_code == 302 and done.headers["Location"] == "/stop/flatten/report"
    assert 'id="flatten-report"' in client.get("/stop/flatten/report").get_data(as_text=True)
    text = flatten_report(client)
    assert f"order #{desk.resting_order_id} cancelled" in text and "close order #" in text and "done" in text
    wait_for(lambda: positions(desk) == (0, 0))
    assert order_state(desk.resting_order_id) == "cancelled"


def test_a_bot_page_closes_its_position_once_and_pauses_when_asked(
    signed_in_trader, make_bot, make_user, login, app, celery_worker_process
):
    trader, client = signed_in_trader
    desk = make_desk(trader, make_bot)
    held_by_webhook = positions(desk)[1]
    page = client.get(f"/bots/{desk.bot_id}").get_data(as_text=True)
    assert 'id="bot-close"' in page and 'id="bot-pause-close"' in page and "Close this bot" in page
    token = csrf_token_from(page)
    stranger, password = make_user()
    other = app.test_client()
    login(stranger.username, password, other)
    refused = other.post(
        f"/bots/{desk.bot_id}/close", data={"csrf_token": csrf_token_from(other.get("/").get_data(as_text=True))}
    )
    assert refused.status_code == 404  # another trader's bot is not found

    first = client.post(f"/bots/{desk.bot_id}/close", data={"csrf_token": token, "pause": "1"}, follow_redirects=True)
    assert "Pausing the bot and closing its position" in first.get_data(as_text=True)
    wait_for(lambda: positions(desk) == (0, held_by_webhook))
    with new_session() as session:
        assert session.get(Bot, desk.bot_id).state == "paused"
    assert order_state(desk.resting_order_id) == "open"  # the manual order is not the bot's
    again = client.post(f"/bots/{desk.bot_id}/close", data={"csrf_token": token}, follow_redirects=True)
    assert "holds no position: nothing to close" in again.get_data(as_text=True)
    assert 'id="bot-close"' not in client.get(f"/bots/{desk.bot_id}").get_data(as_text=True)


def test_flatten_bad_input_does_nothing(signed_in_trader, make_bot, make_user):
    trader, client = signed_in_trader
    desk = make_desk(trader, make_bot)
    token = csrf_token_from(client.get("/stop/flatten").get_data(as_text=True))
    nothing = client.post("/stop/flatten", data={"csrf_token": token}, follow_redirects=True)
    assert "Choose at least one broker" in nothing.get_data(as_text=True)
    assert "No flatten was run recently" in client.get("/stop/flatten/report").get_data(as_text=True)
    for broker in ("abc", "999999", "-1"):
        client.post("/stop/flatten", data={"csrf_token": token, "broker": broker})
    assert order_state(desk.resting_order_id) == "open" and positions(desk)[0] > 0


def test_admin_halt_shows_a_banner_and_refuses_orders(app, signed_in_trader, make_user, login):
    trader, client = signed_in_trader
    admin, password = make_user(is_admin=True)
    admin_client = app.test_client()
    login(admin.username, password, test_client=admin_client)
    token = csrf_token_from(admin_client.get("/admin/users").get_data(as_text=True))
    try:
        admin_client.post("/admin/halt", data={"csrf_token": token, "halted": "1"})
        assert "Trading is halted by the administrator" in client.get("/").get_data(as_text=True)
        order_id = trader.order()
        assert placement.place(order_id).state == "rejected" and trader.reload(order_id).error_message == HALTED
        assert "Resume trading" in admin_client.get("/admin/users").get_data(as_text=True)
    finally:
        admin_client.post("/admin/halt", data={"csrf_token": token, "halted": "0"})
    assert "Trading is halted" not in client.get("/").get_data(as_text=True)
    with session_scope() as session:
        set_trading_halted(session, False)


def test_disabling_a_user_pauses_and_may_cancel_their_orders(
    app, bot_trader, make_bot, make_user, login, celery_worker_process
):
    desk = make_desk(bot_trader, make_bot)
    waiting = bot_trader.order(type="limit", price=Decimal("1000"))  # recorded, not sent yet
    admin, password = make_user(is_admin=True)
    admin_client = app.test_client()
    login(admin.username, password, test_client=admin_client)
    token = csrf_token_from(admin_client.get("/admin/users").get_data(as_text=True))
    with new_session() as session:
        username = session.get(User, bot_trader.user_id).username
    answer = admin_client.post(
        f"/admin/users/{username}/active",
        data={"csrf_token": token, "active": "0", "cancel_orders": "1"},
        follow_redirects=True,
    )
    text = answer.get_data(as_text=True)
    assert "paused 1 bot(s) and 1 webhook(s)" in text and "2 open order(s) sent for cancelling" in text
    with new_session() as session:
        assert session.get(Bot, desk.bot_id).state == "paused" and session.get(Webhook, desk.webhook_id).paused
    wait_for(lambda: order_state(desk.resting_order_id) == order_state(waiting) == "cancelled")
    assert positions(desk)[0] > 0  # disabling never sells: only flatten does
