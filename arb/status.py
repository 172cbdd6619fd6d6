"""The arbitrage engine's status: a snapshot of books, spreads, position, P&L, counters and recent
events, published every few seconds. Mixed into ArbEngine (arb/engine.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from arb.pair import as_text
from core.exchanges.perp.book import OrderBook
from core.halt import HALTED
from core.percentiles import percentile


class StatusReport:
    """ArbEngine's snapshot and the loop that publishes it."""

    @property
    def state(self) -> str:
        return (
            "stopping"
            if self.stopping
            else "halted"
            if self.halted_reason or self.unhedged
            else "paused"
            if self.paused_reason or self.paused_by or self.admin_halted
            else "dry_run"
            if self.dry_run
            else "running"
        )

    def snapshot(self) -> dict:
        now = time.monotonic()
        spreads = self.last_spreads

        def book_view(book: OrderBook) -> dict:
            bid, ask = book.best_bid(), book.best_ask()
            return {
                "market": book.market,
                "valid": book.valid,
                "seq": book.seq,
                "age_ms": round(book.age(now) * 1000, 1) if book.updated_at else None,
                "bid": str(bid.price) if bid else None,
                "ask": str(ask.price) if ask else None,
                "resyncs": self.feeds[book.venue].resyncs if book.venue in self.feeds else 0,
            }

        return {
            "ts": time.time(),
            "pair": self.cfg.pair,
            "state": self.state,
            "reason": self.halted_reason
            or ("unhedged position" if self.unhedged else None)
            or self.paused_reason
            or (f"paused by {self.paused_by}" if self.paused_by else None)
            or (HALTED if self.admin_halted else None),
            "controls": {"paused_by": self.paused_by, "dry_run": self.dry_run, "kill_switch": self.halted_reason},
            "books": {v: book_view(b) for v, b in self.books.items()},
            "spreads": None
            if spreads is None
            else {
                "mid": str(round(spreads.mid, 2)),
                "entry_bps": {k: str(round(v, 2)) for k, v in spreads.entry_bps.items()},
                "exit_bps": {k: str(round(v, 2)) for k, v in spreads.exit_bps.items()},
            },
            "thresholds": {
                "entry_bps": str(self.cfg.entry_threshold_bps),
                "exit_bps": str(self.cfg.exit_threshold_bps),
                "size": str(self.cfg.size),
                "max_position": str(self.cfg.max_position),
            },
            "position": {
                "direction": self.direction,
                "sizes": as_text(self.sizes),
                "entry_prices": {k: str(round(v, 4)) for k, v in self.entry_prices.items()},
                "entry_spread_bps": str(round(self.entry_spread_bps, 2)) if self.entry_spread_bps else None,
            },
            "pnl": {
                "realized_today": str(round(self.realized_pnl, 4)),
                "unrealized": str(round(self.unrealized_pnl(), 4)),
                "daily_loss_limit": str(self.cfg.daily_loss_limit_usd),
                "funding": as_text(self.funding),
                "carry": self.carry_view,  # the held position's funding carry (arb/carry.py)
            },
            "risk": {
                **self.risk_view,
                "age_s": round(time.time() - self.risk_view["checked_at"], 1) if self.risk_view else None,
                "thresholds": {
                    "warn_distance_pct": str(self.cfg.risk.warn_distance_pct),
                    "reduce_distance_pct": str(self.cfg.risk.reduce_distance_pct),
                    "warn_margin_ratio": str(self.cfg.risk.warn_margin_ratio),
                    "reduce_margin_ratio": str(self.cfg.risk.reduce_margin_ratio),
                },
            },
            "counters": dict(self.counters),
            "latency_us": {
                "detect_to_sent_p50": percentile(self.latencies_us, 0.5),
                "detect_to_sent_last": self.latencies_us[-1] if self.latencies_us else None,
            },
            "events": list(self.events)[-40:],
        }

    async def _status(self) -> None:
        while True:
            if self.publish is not None:
                snap = self.snapshot()
                with contextlib.suppress(Exception):  # status is best effort; trading never waits for it
                    await asyncio.to_thread(self.publish, snap)
            await asyncio.sleep(self.cfg.status_interval_s)
