# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
"""Flatten against the real simulator: every open order cancelled, every tracked position sold through
the order pipeline, the automation paused; a broker whose venue fails is listed and the others proceed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from core import flatten
from core.halt import HALTED
from core.infra.db import new_session
from core.models import Bot, Order, Webhook
from core.orders import placement
from tests.core.bots.fixtures import bot_trader, make_bot  # noqa: F401
from tests.stop_support import DEAD_URL, make_desk, order_state, positions, second_broker, trading_halt
from tests.trading_support import Trader


def test_plan_lists_what_flatten_will_do(bot_trader, make_bot):
    desk = make_desk(bot_trader, make_bot)
    with new_session() as session:
        [broker] = flatten.plan(session, bot_trader.user_id)
    assert [c.order_id for c in broker.cancels] == [desk.resting_order_id]
    held_by_bot, held_by_webhook = positions(desk)  # bought 0.02 and 0.01, less the fees taken in BTC
    assert Decimal("0.019") < held_by_bot < Decimal("0.02") and Decimal("0.009") < held_by_webhook < Decimal("0.01")
    assert {(c.owner, c.owner_id, c.quantity) for c in broker.closes} == {
        ("bot", desk.bot_id, held_by_bot),
        ("webhook", desk.webhook_id, held_by_webhook),
    }
    assert f"cancel order #{desk.resting_order_id}" in broker.cancels[0].describe()
    assert "sell 0.01998 BTCUSDT at market (bot" in next(c for c in broker.closes if c.owner == "bot").describe()
    assert positions(desk) == (held_by_bot, held_by_webhook)  # planning changed nothing


def test_flatten_cancels_closes_and_pauses(bot_trader, make_bot):
    desk = make_desk(bot_trader, make_bot)
    [result] = flatten.flatten(bot_trader.user_id)
    assert not result.failed and result.cancelled == [desk.resting_order_id]
    assert order_state(desk.resting_order_id) == "cancelled"
    assert len(result.close_orders) == 2 and all(order_state(i) == "filled" for i in result.close_orders)
    assert positions(desk) == (0, 0)
    with new_session() as session:
        assert session.get(Bot, desk.bot_id).state == "paused"
        assert session.get(Webhook, desk.webhook_id).paused
        closes = list(session.scalars(select(Order).where(Order.id.in_(result.close_orders))))
    assert {o.source for o in closes} == {"bot", "webhook"}  # recorded under their owners
    again = flatten.flatten(bot_trader.user_id)  # nothing left: a second flatten does nothing
    assert again[0].cancelled == [] and again[0].close_orders == []


def test_a_venue_failing_during_flatten_is_listed_and_the_rest_proceeds(bot_trader, make_bot):
    desk = make_desk(bot_trader, make_bot)
    failing = second_broker(bot_trader, "Down")
    stuck = bot_trader.order(broker_id=failing, type="limit", price=Decimal("1000"), quantity=Decimal("0.01"))
    assert placement.place(stuck).state == "open"
    Trader(bot_trader.user_id, failing, "", "", bot_trader.sim).point_at(DEAD_URL)
    results = {r.broker_id: r for r in flatten.flatten(bot_trader.user_id)}
    assert results[failing].failed and results[failing].error
    assert results[failing].notes == [f"cancel order #{stuck}: buy limit BTCUSDT (open)"]
    assert order_state(stuck) == "open"  # left for the retry, not lost nor guessed
    good = results[bot_trader.broker_id]
    assert not good.failed and order_state(desk.resting_order_id) == "cancelled"
    assert positions(desk) == (0, 0)
    Trader(bot_trader.user_id, failing, "", "", bot_trader.sim).point_at(bot_trader.sim.url)
    retry = {r.broker_id: r for r in flatten.flatten(bot_trader.user_id, [failing])}
    assert not retry[failing].failed and retry[failing].cancelled == [stuck]
    assert order_state(stuck) == "cancelled"


def test_someone_elses_broker_is_never_flattened(bot_trader, make_bot, make_user):
    desk = make_desk(bot_trader, make_bot)
    stranger, _ = make_user()
    assert flatten.flatten(stranger.id, [bot_trader.broker_id]) == []
    assert order_state(desk.resting_order_id) == "open"


def test_flatten_while_trading_is_halted_cancels_and_says_the_closes_were_refused(bot_trader, make_bot):
    desk = make_desk(bot_trader, make_bot)
    with trading_halt():
        [result] = flatten.flatten(bot_trader.user_id)
    assert order_state(desk.resting_order_id) == "cancelled"  # cancels still run
    assert all(order_state(i) == "rejected" for i in result.close_orders) and len(result.close_orders) == 2
    assert len(result.notes) == 2 and all(note.endswith(f"rejected: {HALTED}") for note in result.notes)
    assert positions(desk) != (0, 0)  # nothing sold: a flatten after the halt finishes the job


def test_closing_one_bot_cancels_its_orders_sells_its_position_and_touches_nothing_else(bot_trader, make_bot):
    """A bot's "Pause and close": its stop-loss (which locks the BTC it sells) cancelled, its position sold at
    market under the bot, the bot paused; the webhook's position and the manual order stay as they are."""
    desk = make_desk(bot_trader, make_bot)
    held_by_bot, held_by_webhook = positions(desk)
    protection = bot_trader.order(
        side="sell",
        type="stop_loss",
        stop_price=Decimal("1000"),
        quantity=Decimal("0.01"),
        source="bot",
        source_ref=str(desk.bot_id),
    )
    assert placement.place(protection).state == "open"

    result = flatten.close_bot(bot_trader.user_id, desk.bot_id, pause=True)

    assert not result.failed and result.cancelled == [protection]
    assert order_state(protection) == "cancelled" and order_state(desk.resting_order_id) == "open"
    [close] = result.close_orders
    assert order_state(close) == "filled"
    assert positions(desk) == (0, held_by_webhook) and held_by_bot > 0
    with new_session() as session:
        assert session.get(Bot, desk.bot_id).state == "paused"
        assert (session.get(Order, close).source, session.get(Order, close).source_ref) == ("bot", str(desk.bot_id))
    again = flatten.close_bot(bot_trader.user_id, desk.bot_id, pause=False)  # nothing left to close
    assert again.cancelled == [] and again.close_orders == []


def test_someone_elses_bot_is_never_closed(bot_trader, make_bot, make_user):
    desk = make_desk(bot_trader, make_bot)
    stranger, _ = make_user()
    with pytest.raises(LookupError):
        flatten.close_bot(stranger.id, desk.bot_id, pause=True)
    with new_session() as session:
        assert session.get(Bot, desk.bot_id).state == "running"
    assert positions(desk)[0] > 0
