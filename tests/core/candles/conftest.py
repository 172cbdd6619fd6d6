import pytest


@pytest.fixture(scope="module")
def sim_options() -> dict:
    """The shared `sim` (tests/sim_support.py), the venue whose own klines our candles are checked against,
    pings every 2 s, so a dropped connection is noticed fast."""
    return {"ws_ping_interval": 2.0}
