"""A real spot simulator on loopback for the commands that talk to a venue (candles download)."""

import pytest

from core.exchanges.sim.server import start_in_thread


@pytest.fixture(scope="session")
def sim():
    handle = start_in_thread(seed=11)
    yield handle
    handle.stop()
