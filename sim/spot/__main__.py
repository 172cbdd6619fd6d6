"""`python -m sim.spot [--port N] [--replay CSV [--speed N]]` (Procfile `sim`, via `aristobot sim`): the
spot exchange simulator (Binance protocol); with --replay (or `sim.replay` in config.yaml) its market is a
real 1m candle file played back `speed` times faster than the clock (sim/spot/replay.py)."""

from __future__ import annotations

import argparse

from core.infra.config import ROOT, get_settings
from core.infra.liveness import start_liveness
from core.infra.logs import setup_logging
from sim.spot.replay import ReplayError, ReplayMarket
from sim.spot.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sim.spot", description=__doc__)
    parser.add_argument("--port", type=int, default=None, help="Default: sim.port in config.yaml.")
    parser.add_argument("--replay", default=None, help="a 1m candle CSV to replay. Default: sim.replay in config.yaml.")
    parser.add_argument(
        "--speed", type=float, default=None, help="market seconds per wall second. Default: sim.replay_speed."
    )
    args = parser.parse_args()
    port = args.port
    settings = get_settings()
    configured = settings.file.sim.replay
    replay_file = args.replay or (str(ROOT / configured) if configured else None)  # config paths: from the repo root
    replay = None
    if replay_file:
        try:
            replay = ReplayMarket(replay_file, args.speed or settings.file.sim.replay_speed)
        except ReplayError as exc:
            parser.exit(2, f"sim: cannot replay: {exc}\n")
    setup_logging("sim", settings.file.log_level)
    start_liveness("sim")
    serve(
        host=settings.file.sim.host,
        port=port or settings.file.sim.port,
        seed=settings.file.sim.seed,
        state_dir=settings.var_dir / ("sim-replay" if replay else "sim"),
        replay=replay,
    )


if __name__ == "__main__":
    main()
