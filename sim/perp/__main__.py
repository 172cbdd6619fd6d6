"""`python -m sim.perp` (Procfile `perpsim`): the Vest and Paradex simulator faces for the demo.

Both faces share one correlated market (with injected short-lived spreads) and carry the fixed
demo accounts, so an engine with no credentials configured trades against them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from decimal import Decimal

from core.exchanges.perp.demo import SimPorts, demo_credentials, sim_ports
from core.infra.config import ConfigError, get_settings
from core.infra.liveness import start_liveness
from core.infra.logs import setup_logging
from sim.perp.face import FaceServer
from sim.perp.launcher import perp_market, provision_accounts
from sim.perp.paradex_face import ParadexFace
from sim.perp.vest_face import VestFace

log = logging.getLogger("sim.perp")


async def settle_funding(faces: tuple[FaceServer, ...], every_s: float, rate_bps: Decimal) -> None:
    """Funding on both venues every `every_s` (the real venues settle hourly or every 8 h)."""
    while True:
        await asyncio.sleep(every_s)
        for face in faces:
            for market in face.ledger.market.markets:
                face.ledger.pay_funding(market, rate_bps)


async def serve(ports: SimPorts) -> None:
    market = perp_market(ports.seed, ports.spread_every_s)
    vest, paradex = VestFace(market), ParadexFace(market)
    provision_accounts(vest, paradex, demo_credentials())
    vest_port = await vest.start(ports.vest_port)
    paradex_port = await paradex.start(ports.paradex_port)
    log.info("perp_sims_ready", extra={"vest_port": vest_port, "paradex_port": paradex_port})
    funding = (
        asyncio.create_task(settle_funding((vest, paradex), ports.funding_every_s, ports.funding_rate_bps))
        if ports.funding_every_s
        else None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if funding is not None:
        funding.cancel()
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
    asyncio.run(serve(ports))
    liveness.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
