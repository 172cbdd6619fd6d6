"""The bot-tick hook: at each candle close, which bot ticks are due, enqueued once per bot and candle.

Providers answer "which bots run on this (venue, symbol, timeframe)?". The bots module registers one
by being listed in PROVIDER_PATHS (imported lazily; a module not there yet is skipped), tests with
`register_tick_provider`. Idempotency: a Redis SET NX per (idempotency key) so a candle re-seen after a
reconnect or a restart never ticks a bot twice.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from core.bus import PREFIX
from core.candles.candle import ClosedCandle

log = logging.getLogger(__name__)

TICK_KEY_TTL_S = 3 * 24 * 3600
# "module:function" providers tried at first use; the bots module adds itself here.
PROVIDER_PATHS = ["core.bots.ticks:due_ticks"]


@dataclass(frozen=True)
class BotTick:
    task_name: str
    args: tuple = ()
    idempotency_key: str = ""  # e.g. f"bot:{bot_id}:{candle.open_time}:{candle.timeframe}"
    kwargs: dict[str, Any] = field(default_factory=dict)


TickProvider = Callable[[ClosedCandle], list[BotTick]]
_providers: list[TickProvider] = []
_paths_loaded = False


def register_tick_provider(provider: TickProvider) -> None:
    if provider not in _providers:
        _providers.append(provider)


def unregister_tick_provider(provider: TickProvider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def _load_provider_paths() -> None:
    global _paths_loaded
    if _paths_loaded:
        return
    _paths_loaded = True
    for path in PROVIDER_PATHS:
        module_name, _, attr = path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not (module_name + ".").startswith(f"{exc.name}."):
                raise
            continue
        register_tick_provider(getattr(module, attr))


def due_bot_ticks(candle: ClosedCandle) -> list[BotTick]:
    _load_provider_paths()
    ticks: list[BotTick] = []
    for provider in list(_providers):
        try:
            ticks.extend(provider(candle))
        except Exception:  # one broken provider must not stop the clock for the others
            log.exception("tick_provider_failed", extra={"provider": getattr(provider, "__name__", str(provider)),
                                                         "symbol": candle.symbol, "timeframe": candle.timeframe})
    return ticks


def tick_claim_key(idempotency_key: str) -> str:
    return f"{PREFIX}:ticks:{idempotency_key}"


def enqueue_due_ticks(candle: ClosedCandle, client: redis.Redis, send_task: Callable[..., Any]) -> list[BotTick]:
    """Enqueue each due tick not enqueued before; returns the ones sent now."""
    sent = []
    for tick in due_bot_ticks(candle):
        if not tick.idempotency_key:
            raise ValueError(f"tick {tick.task_name} has no idempotency key")
        claim = tick_claim_key(tick.idempotency_key)
        if not client.set(claim, "1", nx=True, ex=TICK_KEY_TTL_S):
            continue
        try:
            send_task(tick.task_name, args=list(tick.args), kwargs=tick.kwargs)
        except Exception:
            client.delete(claim)  # not sent: the next sighting of this candle may try again
            raise
        sent.append(tick)
    return sent
