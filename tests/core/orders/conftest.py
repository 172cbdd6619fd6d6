"""A real simulator on loopback and a funded trader with a broker connection to it (tests/trading_support.py)."""

from __future__ import annotations

import pytest

from core import brokers
from tests.trading_support import GarblingProxy, Trader, make_trader


@pytest.fixture()
def trader(make_user, sim, redis_client) -> Trader:
    yield (t := make_trader(make_user, sim))
    brokers.forget_exchange(t.broker_id)


@pytest.fixture()
def garbling_proxy(sim):
    proxy = GarblingProxy(sim.url)
    yield proxy
    proxy.close()
