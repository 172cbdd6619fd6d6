"""The events that tell a trader (or the admins), worded once: each hook in the domain is one call here."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError

from core.infra.bus import LIVENESS, get_redis
from core.notifications.center import notify, notify_admins

ORDER_ENDINGS = {"rejected": "error", "unknown": "warning", "expired": "warning"}
ARB_EVENTS = {
    "kill_switch": "critical",
    "leg_rollback": "error",
    "unhedged_position_remains": "critical",
    "venue_unhealthy": "error",
}


def bot_stopped(user_id: int, bot_id: int, state: str, error: dict | None) -> None:
    """A bot the platform paused (or stopped on an error) on its own: what failed, where."""
    error = error or {}
    line = f" at line {error['line']}" if error.get("line") else ""
    notify(
        user_id,
        "error",
        "bot",
        f"Bot #{bot_id} {'paused' if state == 'paused' else 'stopped on an error'}",
        f"{error.get('type', 'Error')}{line}: {error.get('message', '')}".strip(),
        f"/bots/{bot_id}",
        dedup_key=f"bot:{bot_id}:{state}:{error.get('type')}:{error.get('line')}",
    )


def webhook_missed(user_id: int, webhook_id: int, name: str, period_start: datetime) -> None:
    notify(
        user_id,
        "warning",
        "webhook",
        f"Webhook {name}: an expected alert did not come",
        f"No alert for the period starting {period_start:%Y-%m-%d %H:%M} UTC.",
        f"/webhooks/{webhook_id}/reliability",
        dedup_key=f"webhook:{webhook_id}:miss:{period_start.isoformat()}",
    )


def webhook_paused(user_id: int, webhook_id: int, name: str, reason: str) -> None:
    notify(
        user_id,
        "error",
        "webhook",
        f"Webhook {name} paused",
        f"{reason}. Its alerts are refused until you resume it.",
        f"/webhooks/{webhook_id}/reliability",
        dedup_key=f"webhook:{webhook_id}:paused",
    )


def order_events(user_id: int, payloads: Iterable[dict[str, Any]]) -> None:
    """Orders that ended rejected, or left unknown / expired (from the committed order events)."""
    for event in payloads:
        severity = ORDER_ENDINGS.get(str(event.get("state")))
        if severity is None or event.get("type") != "order" or event.get("from") == event.get("state"):
            continue
        what = f"{event.get('side', '')} {event.get('symbol', '')}".strip()
        notify(
            user_id,
            severity,
            "order",
            f"Order #{event['order_id']} {event['state']} ({what})",
            str(event.get("error") or event.get("cause") or ""),
            "/trading/history",
            dedup_key=f"order:{event['order_id']}:{event['state']}",
        )


def arb_event(event: str, context: dict) -> None:
    """The arbitrage engine has no owner among the users: its alarms go to the admins, off its loop."""
    severity = ARB_EVENTS.get(event)
    if severity is None:
        return
    body = ", ".join(f"{key}={value}" for key, value in context.items() if key != "pair")
    _in_background(
        notify_admins,
        severity,
        "arb",
        f"Arbitrage {context.get('pair', '')}: {event.replace('_', ' ')}",
        body[:1000],
        "/arbitrage/",
        f"arb:{event}:{context.get('reason') or context.get('venue')}",
    )


def feed_stale(venue: str, symbols: Iterable[str]) -> None:
    """Symbols that just went stale (called from the feed's event loop: the database is not awaited)."""
    symbols = sorted(symbols)
    if symbols:
        _in_background(
            notify_admins,
            "warning",
            "feed",
            f"Market data stale on {venue}: {', '.join(symbols[:10])}",
            "No candle update within the watchdog's window; bots on these symbols wait.",
            "/marketdata/",
            f"feed:{venue}:stale:{','.join(symbols)}",
        )


def process_started(name: str, forget_after_s: float = 600.0) -> None:
    """A process that starts while its previous life's heartbeat is recent was restarted: tell the admins."""

    def check() -> None:
        try:
            raw = get_redis().hget(LIVENESS, name)
        except RedisError:
            return  # the heartbeat itself reports Redis being down
        previous = json.loads(raw) if raw else None
        if previous and previous.get("pid") != os.getpid() and time.time() - previous["ts"] < forget_after_s:
            notify_admins(
                "warning",
                "system",
                f"Process restarted: {name}",
                f"Previous pid {previous.get('pid')} on {previous.get('host')}, last seen "
                f"{time.time() - previous['ts']:.0f} s before.",
                "/admin/system",
                f"process:{name}:restart",
            )

    _in_background(check)


def _in_background(fn: Callable, *args) -> None:
    threading.Thread(target=fn, args=args, name="notify", daemon=True).start()
