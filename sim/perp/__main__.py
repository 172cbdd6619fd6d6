"""`python -m sim.perp` (Procfile `perpsim`): the Vest and Paradex simulator faces for the demo.

Both faces share one correlated market (with injected short-lived spreads) and carry the fixed
demo accounts, so an engine with no credentials configured trades against them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from core.exchanges.perp.demo import demo_credentials, sim_ports
from core.infra.config import ConfigError, get_settings
from core.infra.liveness import start_liveness
from core.infra.logs import setup_logging
from sim.perp.launcher import perp_market, provision_accounts
from sim.perp.paradex_face import ParadexFace
from sim.perp.vest_face import VestFace

log = logging.getLogger("sim.perp")


async def serve(host_ports: tuple[int, int], seed: int | None, spread_every_s: tuple[float, float]) -> None:
    market = perp_market(seed, spread_every_s)
    vest, paradex = VestFace(market), ParadexFace(market)
    provision_accounts(vest, paradex, demo_credentials())
    vest_port = await vest.start(host_ports[0])
    paradex_port = await paradex.start(host_ports[1])
    log.info("perp_sims_ready", extra={"vest_port": vest_port, "paradex_port": paradex_port})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await vest.stop()
    await paradex.stop()
    log.info("perp_sims_stopped")


def main() -> int:
    try:
        settings = get_settings()
        setup_logging("perpsim", settings.file.log_level)
        ports = sim_ports(settings.file.arb)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    liveness = start_liveness("perpsim")
    asyncio.run(serve((ports.vest_port, ports.paradex_port), ports.seed, ports.spread_every_s))
    liveness.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
