"""The adapters of broker connections: warmed when a worker's pool process starts."""

from __future__ import annotations

from core import brokers
from core.infra.db import new_session, session_scope
from core.models import BrokerConnection
from tests.support import remember_secret
from tests.trading_support import make_trader


def test_warm_adapters_loads_the_markets_and_clock_of_each_venue_and_skips_one_that_cannot_answer(make_user, sim):
    trader = make_trader(make_user, sim)
    with session_scope() as session:
        dead_id = brokers.create_connection(
            session,
            trader.user_id,
            brokers.ConnectionInput(
                venue="sim",
                label="Unreachable",
                api_key=remember_secret("kunreachable1"),
                api_secret=remember_secret("sunreachable1"),
                base_url="http://127.0.0.1:9",
            ),
        ).id
    brokers.forget_exchange(trader.broker_id)  # cold, as in a freshly forked pool process

    warm = brokers.warm_adapters()
    with new_session() as session:
        exchange = brokers.exchange_for(session.get_one(BrokerConnection, trader.broker_id))
        unreachable = brokers.exchange_for(session.get_one(BrokerConnection, dead_id))

    assert warm >= 1
    assert exchange.has_markets and exchange.clock.offset_ms is not None
    assert not unreachable.has_markets
