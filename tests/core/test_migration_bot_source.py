"""Migration eaad3931ae07: bots that existed before it get their broker's venue and symbol as signal source
(what ticked them until then). Run down and up inside one transaction that is rolled back: the shared test
database is left as it was."""

from __future__ import annotations

import secrets

from alembic import command
from sqlalchemy import text

from core.infra.db import get_engine, session_scope
from core.infra.migrate import alembic_config
from core.models import BrokerConnection
from tests.support import remember_secret


def test_existing_bots_get_their_broker_market_as_source(make_user):
    user, _ = make_user()
    with session_scope() as session:
        broker = BrokerConnection(user_id=user.id, venue="kraken", label="k", base_url="http://127.0.0.1:9")
        broker.set_credentials(
            remember_secret("k-" + secrets.token_hex(6)), remember_secret("s-" + secrets.token_hex(9))
        )
        session.add(broker)
        session.flush()
        broker_id = broker.id
    with get_engine().connect() as conn:
        transaction = conn.begin()
        try:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "e5b9c3d7f2a8")
            conn.execute(
                text(
                    "insert into bots (user_id, name, params, broker_id, venue, symbol, timeframe, candles_needed,"
                    " timeout_seconds, state, created_at, updated_at) values (:u, 'old', '{}', :b, 'kraken', 'XBTUSD',"
                    " '1h', 500, 10, 'paused', now(), now())"
                ),
                {"u": user.id, "b": broker_id},
            )
            command.upgrade(config, "eaad3931ae07")
            row = conn.execute(text("select source_venue, source_symbol from bots where user_id = :u"), {"u": user.id})
            assert row.one() == ("kraken", "XBTUSD")
        finally:
            transaction.rollback()
    with get_engine().connect() as conn:
        assert conn.execute(text("select count(*) from bots where user_id = :u"), {"u": user.id}).scalar() == 0
