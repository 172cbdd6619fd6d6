"""`python -m feeds` (Procfile `feeds`): the heartbeat process, one feed per source of config.yaml's `feeds`
(core.candles.sources), all on one event loop.

Options (for tests and operators) replace the configured sources by one: --venue, --symbols BTCUSDT,ETHUSDT,
--ws-url, --rest-url. Without them, every configured source runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time

from celery import Celery

from core.bots.ticks import due_ticks
from core.candles.pipeline import CandlePipeline
from core.candles.source_protocols import protocol_for
from core.candles.sources import FeedSource, configured_sources, follow_key
from core.candles.ticks import TickHook
from core.exchanges.replay_clock import replay_clock
from core.exchanges.spot.binance_klines import rest_base_url, ws_base_url
from core.exchanges.spot.registry import make_exchange
from core.infra.bus import get_redis
from core.infra.config import get_settings
from core.infra.db import get_engine, wait_for_database
from core.infra.liveness import start_liveness
from core.infra.logs import setup_logging
from feeds.service import FeedOptions, FeedService

log = logging.getLogger("feeds")


def build_service(
    venue: str, symbols: list[str], timeframes: list[str], ws_url: str, rest_url: str | None, **options
) -> FeedService:
    client = get_redis()
    celery = Celery("aristobot-feeds")
    celery.config_from_object("celeryconfig")
    exchange = make_exchange(venue, api_key="", api_secret="", base_url=rest_url, redis=client)
    protocol = protocol_for(venue)
    # A simulator replaying a candle file runs its own, faster clock: candles are timed by it.
    clock = (replay_clock(rest_url) if venue == "sim" and rest_url else None) or time.time
    pipeline = CandlePipeline(
        venue,
        client=client,
        engine=get_engine(),
        timeframes=timeframes,
        tick_hook=TickHook(due_ticks, celery.send_task),
        parse=protocol.parse,
        clock=clock,
    )
    feed_options = FeedOptions(ws_base=ws_url, symbols=symbols, follow_key=follow_key(venue), **options)
    service = FeedService(feed_options, pipeline, exchange, client, protocol=protocol, clock=clock)
    pipeline.gap_filler = service.fill_gap
    return service


def sources_of(args: argparse.Namespace) -> list[FeedSource]:
    """The configured sources, or the one the command line names."""
    settings = get_settings()
    if args.venue is None and args.symbols is None and args.ws_url is None and args.rest_url is None:
        return configured_sources(settings)
    first = configured_sources(settings)[0]
    venue = args.venue or first.venue
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()] if args.symbols else first.symbols
    return [FeedSource(venue, tuple(symbols), first.timeframes, args.ws_url, args.rest_url)]


def combined_info(services: list[FeedService]) -> dict:
    """The liveness report: the first source's status at the top (the heartbeat), every source under `sources`."""
    infos = [service.info() for service in services]
    return {**infos[0], "sources": infos}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    feeds = get_settings().file.feeds
    parser = argparse.ArgumentParser(prog="python -m feeds", description="Live candles from the venue websocket")
    parser.add_argument("--venue", default=None, help=f"one source only (configured: {feeds.venue} ...)")
    parser.add_argument("--symbols", default=None, help="comma-separated")
    parser.add_argument("--ws-url", default=None, help="websocket base URL (default: the venue's)")
    parser.add_argument("--rest-url", default=None, help="REST base URL (default: the venue's)")
    parser.add_argument("--liveness-name", default="feeds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # The websocket loop, the pipeline and the Postgres writer are threads: hand over the interpreter
    # within 1 ms (not the default 5) so a message waits less behind a batch.
    sys.setswitchinterval(0.001)
    settings = get_settings()
    setup_logging("feeds", settings.file.log_level)
    wait_for_database(process="feeds")
    services = [
        build_service(
            source.venue,
            list(source.symbols),
            list(source.timeframes),
            source.ws_url or ws_base_url(source.venue, settings),
            source.rest_url or rest_base_url(source.venue, settings),
        )
        for source in sources_of(args)
    ]
    liveness = start_liveness(args.liveness_name, lambda: combined_info(services))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        for service in services:
            log.info("feeds_started", extra={"venue": service.venue, "symbols": service.symbols})
        await asyncio.gather(*(service.run(stop) for service in services))
        log.info("feeds_stopped", extra={"venues": [service.venue for service in services]})

    try:
        asyncio.run(run())
    finally:
        liveness.stop()


if __name__ == "__main__":
    main()
