"""Bot ticks (queue `bots`): one warm strategy sandbox per (bot, strategy version) in each worker process,
so a live decision costs milliseconds instead of an interpreter start.

The `bots` worker runs a thread pool (Procfile: `-P threads -c 20`): a tick mostly waits (on its sandbox
child, Postgres, the venue), so the 20 ticks of one close run side by side in one process, and that one
process holds the only warm sandbox of each bot. At its start it warms the sandboxes of every running bot,
so no tick at a close pays a sandbox start (docs/bench/bots.md). A prefork pool would hold one sandbox per
bot in each child and start each of them cold there: warming is skipped for it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from celery import shared_task, signals
from celery.concurrency.thread import TaskPool as ThreadPool
from sqlalchemy.exc import OperationalError

from core import tasks
from core.bots.runner import run_tick
from core.bots.spec import BotSpec, running_specs
from core.infra.db import new_session
from core.strategies.sandbox import SandboxError, SandboxLimits, WarmSandbox

log = logging.getLogger(__name__)

BOTS_QUEUE = "bots"  # where celeryconfig.task_routes sends workers.bots.*
MAX_WARM_SANDBOXES = 24  # ~20 live bots per installation; each child holds about 150 MB
_sandboxes: OrderedDict[tuple[int, int, int], WarmSandbox] = OrderedDict()
_sandboxes_lock = threading.Lock()


def sandbox_for(spec: BotSpec) -> WarmSandbox:
    """The bot's warm sandbox (LRU-bounded). A crashed or timed-out child is restarted by WarmSandbox itself
    on the next call; a new strategy version or timeout gets a new sandbox and the old one is closed."""
    key = (spec.bot_id, spec.version_id, spec.timeout_seconds)
    evicted: list[WarmSandbox] = []
    with _sandboxes_lock:
        sandbox = _sandboxes.get(key)
        if sandbox is None:
            for old_key in [k for k in _sandboxes if k[0] == spec.bot_id]:
                evicted.append(_sandboxes.pop(old_key))
            limits = SandboxLimits(cpu_seconds=spec.timeout_seconds, wall_seconds=spec.timeout_seconds)
            sandbox = _sandboxes[key] = WarmSandbox(spec.code, limits=limits)
            while len(_sandboxes) > MAX_WARM_SANDBOXES:
                evicted.append(_sandboxes.popitem(last=False)[1])
        _sandboxes.move_to_end(key)
    for old in evicted:
        old.close()
    return sandbox


def decide(spec: BotSpec, candles: list[list], position: dict | None) -> dict:
    return sandbox_for(spec).decide(candles, params=spec.params, position=position)


@shared_task(name=tasks.BOT_TICK, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=1, max_retries=5)
def tick(bot_id: int, candle_open_time: int, timeframe: str, issued_ms: int | None = None) -> dict:
    """Idempotent per (bot, candle): a redelivered tick finds its tick row and places nothing."""
    return run_tick(bot_id, candle_open_time, timeframe, decide, issued_ms=issued_ms).as_dict()


def warm_running_bots() -> int:
    """Start the sandbox of every running bot (one after the other); returns how many are warm."""
    with new_session() as session:
        specs = running_specs(session)
    warm = 0
    for spec in specs[:MAX_WARM_SANDBOXES]:
        try:
            sandbox_for(spec).start()
            warm += 1
        except SandboxError as exc:  # the bot's tick reports it (and stops the bot) with the strategy's line
            log.warning("bot_sandbox_warm_failed", extra={"bot_id": spec.bot_id, "error": str(exc)[:200]})
    log.info("bot_sandboxes_warm", extra={"warm": warm, "running": len(specs)})
    return warm


@signals.worker_ready.connect
def _warm_at_start(sender=None, **_kwargs) -> None:
    queues = sender.app.amqp.queues.consume_from if sender else {}
    if BOTS_QUEUE in queues and isinstance(getattr(sender, "pool", None), ThreadPool):
        threading.Thread(target=warm_running_bots, name="warm-bot-sandboxes", daemon=True).start()
