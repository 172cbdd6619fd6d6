"""The flip bots bench bots and bench chaos run: created running on the markets asked, then paused."""

from __future__ import annotations

from sqlalchemy import select

from bench.bots import pause_bots, start_flip_bots
from core.infra.db import session_scope
from core.models import Bot, BrokerConnection


def test_flip_bots_start_on_their_markets_and_pause(make_user):
    user, _ = make_user()
    with session_scope() as session:
        broker = BrokerConnection(user_id=user.id, venue="sim", label="bench bots", base_url="http://127.0.0.1:9")
        broker.set_credentials("k" * 16, "s" * 24)
        session.add(broker)
        session.flush()
        ids = start_flip_bots(session, user.id, broker.id, "chaos", [("BTCUSDT", "1m"), ("ETHUSDT", "3m")])
    with session_scope() as session:
        bots = session.scalars(select(Bot).where(Bot.id.in_(ids)).order_by(Bot.id)).all()
        assert [(b.symbol, b.timeframe, b.state) for b in bots] == [
            ("BTCUSDT", "1m", "running"),
            ("ETHUSDT", "3m", "running"),
        ]
        assert len({b.strategy_version_id for b in bots}) == 1 and all(b.name.startswith("chaos-") for b in bots)
    pause_bots(ids)
    with session_scope() as session:
        assert set(session.scalars(select(Bot.state).where(Bot.id.in_(ids)))) == {"paused"}
