"""`python -m arb` (Procfile `arb`, `aristobot arb`): the arbitrage engine process, every configured pair in it
(arb/runner.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from arb.config import ArbConfig, load
from arb.runner import PairsRunner, status_publisher
from arb.startup import set_priority
from arb.venues import build_venues
from core import arb_commands
from core.exchanges import errors
from core.exchanges.perp.credentials import Credentials
from core.infra.config import ConfigError, get_settings
from core.infra.db import wait_for_database
from core.infra.liveness import start_liveness
from core.infra.logs import setup_logging

log = logging.getLogger("arb")
CLEAN_EXIT = "Clean exit, no pending orders"


def redis_client():
    from core.infra.bus import get_redis

    return get_redis()


def take_commands() -> list[str]:
    from core.infra.bus import get_redis

    return arb_commands.take(get_redis())


async def connect_venues(configs: list[ArbConfig], creds: Credentials, stop: asyncio.Event) -> dict | None:
    """The venues may start after us (make run): retry until they answer or we are told to stop."""
    delay = 0.5
    while not stop.is_set():
        try:
            return await build_venues(configs[0], creds, configs)
        except (errors.Unavailable, OSError) as exc:
            log.warning("venue_unreachable", extra={"retry_in_s": delay, "error": str(exc)[:200]})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 5.0)
    return None


async def run(configs: list[ArbConfig], creds: Credentials) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if creds.demo:
        log.info(
            "demo_accounts",
            extra={"note": "no venue credentials configured: using the simulator demo accounts (python -m sim.perp)"},
        )
    venues = await connect_venues(configs, creds, stop)
    if venues is None:
        log.info(CLEAN_EXIT)
        return 0
    pairs = [cfg.pair for cfg in configs]
    runner = PairsRunner(configs, venues, status_publisher(pairs, redis_client), take_commands)
    liveness = start_liveness("arb", lambda: {"pairs": runner.states()})
    starting = asyncio.create_task(runner.start())
    await asyncio.wait([starting, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    if starting.done() and isinstance(starting.exception(), ConfigError):  # a pair's market is not on its venue
        liveness.stop()
        await runner.close_venues()  # nothing started: no position is read or written
        raise starting.exception()  # type: ignore[misc]
    if starting.done() and starting.exception() is not None:
        log.error("engine_start_failed", extra={"error": repr(starting.exception())[:300]})
        stop.set()
    await stop.wait()
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await starting
    clean = await runner.stop()
    liveness.stop()
    liveness.join(5)
    if clean:
        log.info(CLEAN_EXIT)
        return 0
    log.error("exit_with_pending_orders", extra={"note": "see open_orders_unknown / db_write_deferred above"})
    return 1


def main() -> int:
    try:
        settings = get_settings()
        setup_logging("arb", settings.file.log_level)
        configs, creds = load()
    except ConfigError as exc:
        print(str(exc) if str(exc).startswith("arb:") else f"arb: {exc}", file=sys.stderr)
        return 2
    set_priority(configs[0])
    wait_for_database(process="arb")  # it reads its positions at start; PostgreSQL may be restarting
    try:
        return asyncio.run(run(configs, creds))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
