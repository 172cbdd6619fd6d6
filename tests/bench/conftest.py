"""A real spot simulator on loopback for the benches that create connections on it."""

import pytest

from core.exchanges.sim.server import start_in_thread


@pytest.fixture(scope="session")
def sim():
    handle = start_in_thread(seed=7)
    yield handle
    handle.stop()
