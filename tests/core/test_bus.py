"""Every Redis key and channel is named in core/infra/bus.py: no other module spells the prefix."""

from __future__ import annotations

import re
from pathlib import Path

from core.infra import bus

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "webapp", "workers", "feeds", "arb", "sim", "cli", "bench")
SPELLED_KEY = re.compile(r"""\{PREFIX\}|["']aristobot:[\w{]""")


def test_redis_names_are_built_only_in_core_bus():
    sources = [path for package in PACKAGES for path in (ROOT / package).rglob("*.py")]
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        if path != Path(bus.__file__) and SPELLED_KEY.search(path.read_text())
    ]
    assert sources and offenders == []


def test_names_of_different_things_do_not_collide():
    names = [
        bus.LIVENESS,
        bus.EXPECTED_PROCESSES,
        bus.QUEUE_DEPTHS,
        bus.order_events_channel(1),
        bus.fills_pending(1, "BTCUSDT"),
        bus.reconcile_swept(1),
        bus.flatten_report(1),
        bus.ticket_confirmation(1, "n"),
        bus.WEBHOOKS_PENDING,
        bus.WEBHOOKS_WAKE,
        bus.STRANGER_COUNTS,
        bus.STRANGER_SAMPLE,
        bus.stranger_rate_key("a", 1),
        bus.EXTRA_SYMBOLS,
        bus.candle_stream("sim", "BTCUSDT", "1m"),
        bus.live_channel("sim", "BTCUSDT"),
        bus.book_key("sim", "BTCUSDT"),
        bus.depth_key("sim", "BTCUSDT"),
        bus.bot_tick_claim("bot:1"),
        bus.download_checkpoint("sim", "B", "1m", 0, 1),
        bus.marketdata_jobs(1),
        bus.backtest_progress(1),
        bus.backtest_run_progress(1),
        bus.ARB_STATUS,
        bus.ARB_PAIRS,
        bus.arb_status_key("BTC"),
        bus.ARB_STATUS_CHANNEL,
        bus.venue_nonce("sim", "f"),
        bus.ratelimit_spent("sim"),
        bus.ratelimit_blocked("sim"),
        *bus.ratelimit_queue("sim"),
        bus.ratelimit_held("sim"),
        bus.ratelimit_budget("sim", 10, 1000),
    ]
    assert len(set(names)) == len(names)
    assert all(name.startswith(f"{bus.PREFIX}:") for name in names)
