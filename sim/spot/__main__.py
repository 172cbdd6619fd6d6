"""`python -m sim.spot [--port N]` (Procfile `sim`, via `aristobot sim`): the spot exchange simulator
(Binance protocol)."""

from __future__ import annotations

import argparse

from core.infra.config import get_settings
from core.infra.liveness import start_liveness
from core.infra.logs import setup_logging
from sim.spot.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sim.spot", description=__doc__)
    parser.add_argument("--port", type=int, default=None, help="Default: sim.port in config.yaml.")
    port = parser.parse_args().port
    settings = get_settings()
    setup_logging("sim", settings.file.log_level)
    start_liveness("sim")
    serve(
        host=settings.file.sim.host,
        port=port or settings.file.sim.port,
        seed=settings.file.sim.seed,
        state_dir=settings.var_dir / "sim",
    )


if __name__ == "__main__":
    main()
