"""`python -m feeds` (Procfile `feeds`): the heartbeat process.

Options (for tests and operators): --venue, --symbols BTCUSDT,ETHUSDT, --ws-url, --rest-url.
Defaults come from config.yaml's `feeds` section and the simulator's address.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from celery import Celery

from core.bots.ticks import due_ticks
from core.candles.pipeline import CandlePipeline
from core.candles.ticks import TickHook
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
    pipeline = CandlePipeline(
        venue,
        client=client,
        engine=get_engine(),
        timeframes=timeframes,
        tick_hook=TickHook(due_ticks, celery.send_task),
    )
    service = FeedService(FeedOptions(ws_base=ws_url, symbols=symbols, **options), pipeline, exchange, client)
    pipeline.gap_filler = service.fill_gap
    return service


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    settings = get_settings()
    feeds = settings.file.feeds
    parser = argparse.ArgumentParser(prog="python -m feeds", description="Live candles from the venue websocket")
    parser.add_argument("--venue", default=feeds.venue)
    parser.add_argument("--symbols", default=",".join(feeds.symbols), help="comma-separated")
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
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    service = build_service(
        args.venue,
        symbols,
        settings.file.feeds.timeframes,
        args.ws_url or ws_base_url(args.venue, settings),
        args.rest_url or rest_base_url(args.venue, settings),
    )
    liveness = start_liveness(args.liveness_name, service.info)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        log.info("feeds_started", extra={"venue": args.venue, "symbols": symbols})
        await service.run(stop)
        log.info("feeds_stopped", extra={"venue": args.venue})

    try:
        asyncio.run(run())
    finally:
        liveness.stop()


if __name__ == "__main__":
    main()
