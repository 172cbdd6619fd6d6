"""How long each kind of order may wait for a venue's budget: a webhook's alert freshness window, a
bot's candle, the configured bound for the rest; counted from the order's creation."""

from __future__ import annotations

from datetime import timedelta

from core.infra.config import get_settings
from core.infra.db import session_scope
from core.models import Bot, Order
from core.orders.useful_life import manual_wait_s, useful_life_end, useful_life_s


def test_each_source_has_its_useful_life(trader):
    with session_scope() as session:
        bot = Bot(
            user_id=trader.user_id,
            name="fifteen",
            broker_id=trader.broker_id,
            venue="sim",
            symbol="BTCUSDT",
            timeframe="15m",
        )
        session.add(bot)
        session.flush()
        bot_ref = bot.source_ref
    orders = {
        "webhook": trader.order(source="webhook", source_ref="999998"),
        "bot": trader.order(source="bot", source_ref=bot_ref),
        "deleted bot": trader.order(source="bot", source_ref="999999"),
        "manual": trader.order(),
    }
    with session_scope() as session:
        lives = {name: useful_life_s(session, session.get(Order, oid)) for name, oid in orders.items()}
        manual = session.get(Order, orders["manual"])
        end = useful_life_end(session, manual)
        created = manual.created_at
    assert lives == {
        "webhook": get_settings().file.webhooks.max_alert_age_s,
        "bot": 900,
        "deleted bot": manual_wait_s(),
        "manual": manual_wait_s(),
    }
    assert end == (created + timedelta(seconds=manual_wait_s())).timestamp()


def test_a_triggered_emulated_trailing_stop_lives_from_its_trigger_not_its_creation(trader):
    order_id = trader.order(side="sell", type="trailing_stop", trail_pct=1)
    with session_scope() as session:
        order = session.get(Order, order_id)
        triggered = order.created_at + timedelta(days=3)
        assert useful_life_end(session, order, since=triggered) == triggered.timestamp() + manual_wait_s()
