# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures and tests.stop_support are parameters here)
"""Journey: a trader away from the screen pauses everything and flattens in one click.

Their bot and their TradingView webhook each hold BTC, a limit order rests at the venue, and one of
their two brokers has just gone down. From the header of the page they have open they press Pause all
(the next alert is stored and refused "paused"), then Flatten: the confirmation lists every order to
cancel and every position to sell, per broker; they confirm. The healthy broker is flat (the closes go
through the real `orders` worker and fill on the simulator); the broken one is listed with what is left
on it, and once it is back, Flatten again finishes the job."""

from __future__ import annotations

import json
import re
from decimal import Decimal

from core.infra.db import new_session
from core.models import Bot, Order, Webhook
from core.orders import placement
from tests.core.bots.fixtures import bot_trader, make_bot  # noqa: F401
from tests.stop_support import (  # noqa: F401
    DEAD_URL,
    flatten_report,
    make_desk,
    order_state,
    positions,
    second_broker,
    signed_in_trader,
    wait_for,
)
from tests.support import csrf_token_from
from tests.trading_support import Trader


def test_a_trader_away_from_the_screen_pauses_everything_and_flattens_in_one_click(
    signed_in_trader, make_bot, celery_worker_process
):
    trader, browser = signed_in_trader
    desk = make_desk(trader, make_bot)
    other = second_broker(trader, "Backup venue")
    left_there = trader.order(broker_id=other, type="limit", price=Decimal("1000"))
    assert placement.place(left_there).state == "open"
    Trader(trader.user_id, other, "", "", trader.sim).point_at(DEAD_URL)  # that venue just went down

    page = browser.get("/trading/").get_data(as_text=True)
    header = page.split("<main>")[0]
    assert "Pause all" in header
    paused = browser.post("/stop/pause-all", data={"csrf_token": csrf_token_from(page)}, follow_redirects=True)
    assert "paused 1 bot(s) and 1 webhook(s)" in paused.get_data(as_text=True)
    alert = browser.post(
        f"/webhooks/tv/{desk.webhook_token}", data=json.dumps({"action": "buy"}), content_type="application/json"
    )
    assert alert.status_code == 409 and "paused" in alert.get_data(as_text=True)

    confirm = browser.get(re.search(r'href="(/stop/flatten)"', header).group(1)).get_data(as_text=True)
    assert f"cancel order #{desk.resting_order_id}: buy limit BTCUSDT (open)" in confirm
    assert f"cancel order #{left_there}: buy limit BTCUSDT (open)" in confirm
    assert "at market (bot" in confirm and "at market (webhook" in confirm
    brokers = re.findall(r'name="broker" value="(\d+)" checked', confirm)
    assert sorted(map(int, brokers)) == sorted([trader.broker_id, other])
    browser.post("/stop/flatten", data={"csrf_token": csrf_token_from(confirm), "broker": brokers})
    report = flatten_report(browser)  # one broker failed: said so, the rest was done
    assert "Backup venue" in report and "failed" in report and f"cancel order #{left_there}" in report
    wait_for(lambda: positions(desk) == (0, 0))
    assert order_state(desk.resting_order_id) == "cancelled" and order_state(left_there) == "open"
    with new_session() as session:
        assert session.get(Bot, desk.bot_id).state == "paused" and session.get(Webhook, desk.webhook_id).paused
        closes = session.query(Order).filter(Order.user_id == trader.user_id, Order.side == "sell").all()
    assert {o.source for o in closes} == {"bot", "webhook"} and {o.state for o in closes} == {"filled"}

    Trader(trader.user_id, other, "", "", trader.sim).point_at(trader.sim.url)  # the venue is back
    browser.post("/stop/flatten", data={"csrf_token": csrf_token_from(confirm), "broker": [str(other)]})
    assert f"order #{left_there} cancelled" in flatten_report(browser)
    assert order_state(left_there) == "cancelled"
