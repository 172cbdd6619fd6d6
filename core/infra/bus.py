"""Names of everything that lives in Redis, in one place, so processes agree on them."""

from __future__ import annotations

import logging
import time
from functools import lru_cache

import redis

from core.infra.config import get_settings

log = logging.getLogger(__name__)
PREFIX = "aristobot"
QUEUES = ("orders", "bots", "backtests", "maintenance")  # Celery queues: each is a Redis list of that name

# Processes
LIVENESS = f"{PREFIX}:liveness"  # hash: process name -> JSON {ts, pid, host, info}
EXPECTED_PROCESSES = f"{PREFIX}:expected_processes"  # set written by `aristobot run`
QUEUE_DEPTHS = f"{PREFIX}:queue_depths"  # JSON {ts, depths} written by the beat
BACKUP_LAST_FAILURE = f"{PREFIX}:backups:last_failure"  # JSON {at, error} of the last failed daily backup


# Orders
def order_events_channel(user_id: int) -> str:
    """Pub/sub: every state change of a user's orders."""
    return f"{PREFIX}:orders:{user_id}"


def fills_pending(broker_id: int, symbol: str) -> str:
    """Set while a fills batch of this broker's symbol is scheduled."""
    return f"{PREFIX}:fills_pending:{broker_id}:{symbol}"


def reconcile_swept(broker_id: int) -> str:
    return f"{PREFIX}:reconcile:swept:{broker_id}"


def flatten_report(user_id: int) -> str:
    return f"{PREFIX}:flatten:{user_id}"


def bot_close_pending(bot_id: int) -> str:
    """SET NX while a bot's "Close position" is under way: a second click or tab closes nothing twice."""
    return f"{PREFIX}:bot-close:{bot_id}"


def ticket_confirmation(user_id: int, nonce: str) -> str:
    """Set once an order ticket's confirmation page was used."""
    return f"{PREFIX}:ticket_confirmations:{user_id}:{nonce[:64]}"


# Webhooks
WEBHOOKS_PENDING = f"{PREFIX}:webhooks:pending"  # list of accepted alert ids
WEBHOOKS_WAKE = f"{PREFIX}:webhooks:wake"  # flag: a drain task is on its way
STRANGER_COUNTS = f"{PREFIX}:webhooks:unknown:counts"
STRANGER_SAMPLE = f"{PREFIX}:webhooks:unknown:sample"


def stranger_rate_key(bucket: str, minute: int) -> str:
    return f"{PREFIX}:webhooks:unknown:rate:{bucket}:{minute}"


# Candles and market data
EXTRA_SYMBOLS = f"{PREFIX}:feeds:extra_symbols"  # set: symbols the feeds follow beyond config.yaml


def notifications_channel(user_id: int) -> str:
    """Pub/sub: one JSON message per new notification of the user (and per read-state change)."""
    return f"{PREFIX}:notifications:{user_id}"


def notification_rate_key(user_id: int, minute: int) -> str:
    """Counter of the user's outbound notifications in one UTC minute (rate limit)."""
    return f"{PREFIX}:notifications:sent:{user_id}:{minute}"


def candle_stream(venue: str, symbol: str, timeframe: str) -> str:
    """Stream of closed candles, bounded length."""
    return f"{PREFIX}:candles:{venue}:{symbol}:{timeframe}"


def live_channel(venue: str, symbol: str) -> str:
    """Pub/sub: closed and forming candles and book ticks of a symbol (JSON)."""
    return f"{PREFIX}:candles:live:{venue}:{symbol}"


def book_key(venue: str, symbol: str) -> str:
    """The last top of book (JSON)."""
    return f"{PREFIX}:book:{venue}:{symbol}"


def depth_key(venue: str, symbol: str) -> str:
    """The last small book (core.candles.depth, JSON), expiring a minute after the feeds stop writing it."""
    return f"{PREFIX}:depth:{venue}:{symbol}"


def bot_tick_claim(idempotency_key: str) -> str:
    """SET NX per due bot tick: a candle seen twice never ticks a bot twice."""
    return f"{PREFIX}:ticks:{idempotency_key}"


def download_checkpoint(venue: str, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> str:
    return f"{PREFIX}:download:{venue}:{symbol}:{timeframe}:{start_ms}:{end_ms}"


def marketdata_jobs(user_id: int) -> str:
    return f"{PREFIX}:marketdata:jobs:{user_id}"


# Backtests
def backtest_progress(user_id: int) -> str:
    """Pub/sub: progress of a user's backtest runs."""
    return f"{PREFIX}:backtests:progress:{user_id}"


def backtest_run_progress(run_id: int) -> str:
    return f"{PREFIX}:backtests:run:{run_id}:progress"


# Arbitrage
ARB_STATUS = f"{PREFIX}:arb:status"  # the prefix of each pair's status key: arb_status_key(pair)
ARB_PAIRS = f"{PREFIX}:arb:pairs"  # JSON list of the pairs the running engine trades, in config order
ARB_STATUS_CHANNEL = f"{PREFIX}:arb:status-updates"
ARB_COMMANDS = f"{PREFIX}:arb:commands"  # list: the admins' commands to the engine (core/arb_commands.py), FIFO


def arb_status_key(pair: str) -> str:
    """One pair's status, published by the arb engine for the Arbitrage page."""
    return f"{ARB_STATUS}:{pair}"


# Venues
def venue_nonce(venue: str, key_fingerprint: str) -> str:
    return f"{PREFIX}:nonce:{venue}:{key_fingerprint}"


_RATELIMIT = f"{PREFIX}:ratelimit"


def ratelimit_spent(venue: str) -> str:
    return f"{_RATELIMIT}:spent:{venue}"


def ratelimit_blocked(venue: str) -> str:
    return f"{_RATELIMIT}:blocked:{venue}"


def ratelimit_queue(venue: str) -> list[str]:
    """The waiting queue, its liveness and its sequence keys (in the order the Lua script takes them)."""
    return [f"{_RATELIMIT}:queue:{venue}", f"{_RATELIMIT}:queue_alive:{venue}", f"{_RATELIMIT}:queue_seq:{venue}"]


def ratelimit_held(venue: str) -> str:
    return f"{_RATELIMIT}:queue_held:{venue}"


def ratelimit_budget(owner: str, amount: int, window_ms: int) -> str:
    return f"{_RATELIMIT}:{owner}:{amount}/{window_ms}"


@lru_cache(maxsize=1)
def task_sender():
    """A send-only Celery app configured like the workers: processes that enqueue tasks (web, CLI)
    use it without importing the `workers` package."""
    from celery import Celery

    app = Celery("aristobot", set_as_current=False)
    app.config_from_object("celeryconfig")
    return app


def wait_for_redis(timeout: float = 60.0) -> redis.Redis:
    """Block until Redis answers a PING (after a restart it says "loading the dataset" for a while)."""
    client = get_redis()
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return client
        except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise
            log.info("waiting_for_redis", extra={"reason": str(exc)[:200]})
            time.sleep(0.5)


@lru_cache(maxsize=4)
def get_redis(url: str | None = None) -> redis.Redis:
    return redis.Redis.from_url(
        url or get_settings().redis_url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=15,
    )


def feed_symbols(venue: str) -> str:
    """Set: symbols bots need from a heartbeat source other than the first one (whose set is EXTRA_SYMBOLS)."""
    return f"{PREFIX}:feeds:extra_symbols:{venue}"


def cancel_requested(order_id: int) -> str:
    """Set before we ask a venue to cancel an order: reconciliation tells our cancels from the venue's."""
    return f"{PREFIX}:cancel_requested:{order_id}"
