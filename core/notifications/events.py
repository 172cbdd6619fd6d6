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

from core import arb_events
from core.infra.bus import LIVENESS, get_redis
from core.notifications.center import notify, notify_admins

ORDER_ENDINGS = {"rejected": "error", "unknown": "warning", "expired": "warning"}
ARB_EVENTS = {
    "kill_switch": "critical",
    "leg_rollback": "error",
    "unhedged_position_remains": "critical",
    "venue_unhealthy": "error",
    "leg_mismatch": "critical",
    "risk_warning": "warning",
    "risk_reduce": "error",
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
    body = arb_events.describe(event, context)
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


def feed_symbol_rejected(venue: str, symbol: str, error: str) -> None:
    """A heartbeat source refused a symbol (unknown at the venue): the bots on it cannot tick."""
    _in_background(
        notify_admins,
        "error",
        "feed",
        f"{venue} refused to stream {symbol}",
        f"{error[:200]}. Bots whose signal source is {symbol} on {venue} will not tick.",
        "/marketdata/",
        f"feed:{venue}:rejected:{symbol}",
    )


def bot_source_stale(user_id: int, bot_id: int, source: str, minutes: int) -> None:
    """A running bot whose signal source delivered no candle for two of its periods."""
    notify(
        user_id,
        "warning",
        "bot",
        f"Bot #{bot_id}: no candle from its source {source}",
        f"No {source} candle for {minutes} minutes (two periods): the bot is not ticking.",
        f"/bots/{bot_id}",
        dedup_key=f"bot:{bot_id}:source_stale",
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


def venue_finding(user_id: int, kind: str, title: str, body: str, link: str, dedup_key: str) -> None:
    """Something done at the venue outside Aristobot, found by reconciliation (core.orders.venue_check):
    an external order, a balance drift, a protective exit cancelled or changed."""
    severity = "warning" if kind in ("external_order", "balance_drift") else "error"
    notify(user_id, severity, "order", title, body, link, dedup_key=dedup_key)


def process_exited(name: str, reason: str) -> None:
    """Supervision saw a process die unexpectedly (its event listener); it is being restarted."""
    _in_background(
        notify_admins,
        "warning",
        "system",
        f"Process restarted: {name}",
        f"It exited ({reason}); the supervisor restarted it.",
        "/admin/system",
        f"process:{name}:restart",
    )


def process_crash_loop(name: str, reason: str) -> None:
    """Supervision gave up on a process that keeps failing at start: it stays down until someone acts."""
    _in_background(
        notify_admins,
        "critical",
        "system",
        f"Process down, crash loop: {name}",
        f"It failed at every start ({reason}); the supervisor stopped retrying. Fix the cause (its log "
        "says why), then restart the platform.",
        "/admin/system",
        f"process:{name}:crash_loop",
    )


def _in_background(fn: Callable, *args) -> None:
    threading.Thread(target=fn, args=args, name="notify", daemon=True).start()
