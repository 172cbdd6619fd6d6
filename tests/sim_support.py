"""The one set of simulator fixtures (a pytest plugin, loaded by tests/conftest.py).

`sim`: a real spot simulator (Binance protocol) on loopback, one per test module.
`sims`: the Vest and Paradex perp faces on one loop, one per test module, with no injected spreads.

A module (or a folder's conftest) that needs other spot simulator settings overrides `sim_options`
(keyword arguments of `start_in_thread`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sim.perp.launcher import PerpSimHandle, start_perp_sims_in_thread
from sim.spot.server import SimHandle, start_in_thread

SPOT_SEED = 11
PERP_SEED = 3


@pytest.fixture(scope="module")
def sim_options() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="module")
def sim(sim_options: dict[str, Any]) -> Iterator[SimHandle]:
    handle = start_in_thread(**{"seed": SPOT_SEED, **sim_options})
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def sims() -> Iterator[PerpSimHandle]:
    handle = start_perp_sims_in_thread(spread_every_s=(0, 0), seed=PERP_SEED)
    yield handle
    handle.stop()
