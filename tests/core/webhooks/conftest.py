import pytest

from core.exchanges.sim.server import start_in_thread
from tests.core.webhooks.fixtures import broker_of, orders_queue, webhook_of  # noqa: F401


@pytest.fixture(scope="session")
def sim():
    handle = start_in_thread(seed=7)
    yield handle
    handle.stop()
