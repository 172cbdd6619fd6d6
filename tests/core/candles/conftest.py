import pytest

from core.exchanges.sim.server import start_in_thread


@pytest.fixture(scope="module")
def sim():
    """A real simulator on loopback: the venue whose own klines our candles are checked against."""
    handle = start_in_thread(seed=11, ws_ping_interval=2.0)
    yield handle
    handle.stop()
