"""The arbitrage engine: two books -> spread -> both legs at once -> hedge check, with recovery.

Every book update runs the decision synchronously (no queue between the frame and the decision);
an execution runs as one task at a time. Before anything is sent an intent row is written; after,
every leg result. At start-up the venues' positions are the truth: the persisted position and any
unfinished intent are reconciled with them, and any directional remainder is closed reduce-only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from arb.config import ArbConfig
from arb.controls import OperatorControls
from arb.health import HealthLoops
from arb.legs import LegPlan, LegResult, LegRunner, client_id_for, position_of
from arb.pair import VENUES, ZERO, as_text, today
from arb.risk import repair
from arb.risk_watch import RiskWatch
from arb.shutdown import Shutdown
from arb.spread import Decision, Spreads, VwapCache, compute_spreads, decide, direction_name, direction_venues
from arb.startup import Startup
from arb.status import StatusReport
from arb.store import ArbStore, StoreUnavailable
from core.exchanges import errors
from core.exchanges.perp.book import BookFeed, OrderBook
from core.exchanges.perp.venue import PerpVenue
from core.notifications import events as notifications

log = logging.getLogger("arb.engine")


class ArbEngine(Startup, HealthLoops, RiskWatch, OperatorControls, StatusReport, Shutdown):
    """Decision, execution and hedge recovery here; start-up (startup.py), the watch loops (health.py),
    the risk watch (risk_watch.py), the admins' commands (controls.py), the status (status.py) and stopping
    (shutdown.py) are mixed in."""

    def __init__(
        self,
        cfg: ArbConfig,
        venues: dict[str, PerpVenue],
        store: ArbStore | None,
        publish: Callable[[dict], None] | None = None,
        take_commands: Callable[[], list[str]] | None = None,
    ):
        self.cfg = cfg
        self.take_commands = take_commands  # the admins' queued commands (arb/controls.py)
        self.dry_run = cfg.dry_run  # an admin may switch it (arb/controls.py)
        self.paused_by: str | None = None  # the admin who paused the pair: no entries until resumed
        self.loss_offset = ZERO  # the day's P&L when an admin last reset the kill switch
        self.venues = venues
        self.store = store
        self.publish = publish
        self.books: dict[str, OrderBook] = {v: OrderBook(v, cfg.markets[v]) for v in VENUES}
        self.feeds: dict[str, BookFeed] = {}
        self.sizes: dict[str, Decimal] = {v: ZERO for v in VENUES}
        self.entry_prices: dict[str, Decimal] = {}
        self.entry_spread_bps: Decimal | None = None
        self.cash = ZERO
        self.realized_pnl = ZERO
        self.pnl_day = today()
        self.halted_reason: str | None = None  # kill switch: no entries until cleared
        self.paused_reason: str | None = None  # a venue's health or a liquidation risk: entries resume after
        self.risk_reason: str | None = None  # a leg or account past a reduce threshold (risk_watch.py)
        self.risk_view: dict = {}  # the last risk read, for the status
        self._risk_levels: dict[str, str] = {}  # alarm subject -> level, to tell each alarm once
        self.position_version = 0  # bumped whenever self.sizes changes: a risk read overlapping it is ignored
        self.restored = False  # the persisted position is in memory: only then may a stop save over it
        self.funding = {v: ZERO for v in VENUES}  # funding booked per leg since the engine started (+ received)
        self._funding_seen: dict[str, Decimal] = {}  # venue -> funding its open position had settled at last read
        self.admin_halted = False  # the administrator's trading halt (core/halt.py): no entries while on
        self.entries_after = 0.0  # monotonic time before which no entry is tried (after a failed one)
        self.unhedged = False
        self.trading_enabled = False
        self.stopping = False
        self.busy = False
        self.inflight: asyncio.Task | None = None
        self.last_spreads: Spreads | None = None
        self._vwaps = VwapCache()
        self.events: deque[dict] = deque(maxlen=300)
        self.counters = {
            "updates": 0,
            "decisions": 0,
            "entries": 0,
            "exits": 0,
            "rollbacks": 0,
            "flattens": 0,
            "reductions": 0,
            "failed": 0,
        }
        self.latencies_us: deque[float] = deque(maxlen=1000)
        self._dry_run_last: tuple[str, float] | None = None
        self._stale_logged: set[str] = set()
        self._health_failures = {v: 0 for v in VENUES}
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arb-db")  # keeps writes in order
        self._tasks: list[asyncio.Task] = []
        self._closing: set[asyncio.Task] = set()
        self.legs = LegRunner(
            venues=venues,
            books=self.books,
            fees_bps=cfg.fees_bps,
            ticks={"vest": cfg.vest.price_tick, "paradex": cfg.paradex.price_tick},
            max_retries=cfg.max_retries,
            backoff_s=cfg.retry_backoff_ms / 1000,
            timeout_s=cfg.leg_timeout_s,
            slippage_bps=cfg.slippage_bps,
            record_attempt=self._record_attempt,
            record_result=self._record_result,
            emit=self.emit,
        )

    # --- logging / persistence helpers -----------------------------------------------------------

    def emit(self, event: str, level: int = logging.INFO, **context: Any) -> None:
        context.setdefault("pair", self.cfg.pair)
        log.log(level, event, extra=context)
        if self.store is not None:  # a live engine, not a replay or a bench: the admins are told
            notifications.arb_event(event, context)
        self.events.append(
            {
                "time": time.time(),
                "event": event,
                "level": logging.getLevelName(level).lower(),
                **{k: (str(v) if isinstance(v, Decimal) else v) for k, v in context.items()},
            }
        )

    async def db(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        if self.store is None:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, lambda: fn(*args, **kwargs))

    async def _record_attempt(self, intent_id: int, leg: dict) -> None:
        await self.db(self.store.add_leg_attempt, intent_id, {**leg, "state": "pending"}) if self.store else None

    async def _record_result(self, client_id: str, **fields: Any) -> None:
        await self.db(self.store.record_leg, client_id, **fields) if self.store else None

    async def save_position(self) -> None:
        if self.store is None:
            return
        await self.db(
            self.store.save_position,
            self.cfg.pair,
            direction=self.direction,
            sizes=dict(self.sizes),
            entry_prices=dict(self.entry_prices),
            entry_spread_bps=self.entry_spread_bps,
            cash=self.cash,
            realized_pnl=self.realized_pnl,
            pnl_day=self.pnl_day,
            halted_reason=self.halted_reason,
            paused_by=self.paused_by,
            loss_offset=self.loss_offset,
        )

    # --- position --------------------------------------------------------------------------------

    @property
    def direction(self) -> str | None:
        longs = [v for v in VENUES if self.sizes[v] > 0]
        shorts = [v for v in VENUES if self.sizes[v] < 0]
        if len(longs) == 1 and len(shorts) == 1:
            return direction_name(longs[0], shorts[0])
        return None

    @property
    def net(self) -> Decimal:
        return sum(self.sizes.values(), ZERO)

    @property
    def flat(self) -> bool:
        return all(size == 0 for size in self.sizes.values())

    def unrealized_pnl(self) -> Decimal:
        """Open trade's cash flow plus its positions marked at each venue's mid."""
        value = self.cash
        for venue, size in self.sizes.items():
            book = self.books[venue]
            bid, ask = book.best_bid(), book.best_ask()
            if size and bid and ask:
                value += size * (bid.price + ask.price) / 2
        return value if not self.flat else ZERO

    def _apply(self, results: list[LegResult]) -> None:
        self.position_version += 1
        for r in results:
            if not r.filled:
                continue
            venue = r.plan.venue
            old = self.sizes[venue]
            new = old + r.signed_fill
            if r.avg_price is not None and abs(new) > abs(old) and (old == 0 or (old > 0) == (new > 0)):
                previous = self.entry_prices.get(venue, r.avg_price)
                self.entry_prices[venue] = (abs(old) * previous + r.filled * r.avg_price) / abs(new)
            self.sizes[venue] = new
            if old == 0:
                self._funding_seen[venue] = ZERO  # a venue counts a new position's funding from zero
            if new == 0:
                self.entry_prices.pop(venue, None)
                self._funding_seen.pop(venue, None)
            self.cash -= r.signed_fill * (r.avg_price or 0) + r.fee
        if self.flat:
            self.realized_pnl += self.cash
            self.cash = ZERO
            self.entry_spread_bps = None

    # --- decision (hot path) -----------------------------------------------------------------

    def can_add(self, mid: Decimal) -> bool:
        if (
            self.halted_reason
            or self.paused_reason
            or self.paused_by
            or self.admin_halted
            or self.unhedged
            or self.stopping
            or not self.trading_enabled
            or time.monotonic() < self.entries_after
        ):
            return False
        size = self.cfg.size
        biggest = max(abs(s) for s in self.sizes.values())
        return biggest + size <= self.cfg.max_position and (biggest + size) * mid <= self.cfg.capital_usd

    def on_book(self, book: OrderBook) -> None:
        self.counters["updates"] += 1
        decision = self.evaluate()
        if decision is not None:
            self.act(decision, time.perf_counter())

    def evaluate(self, now: float | None = None) -> Decision | None:
        """Spreads from both books and the decision, or None (stale/invalid book, busy, nothing to do)."""
        now = time.monotonic() if now is None else now
        stale_s = self.cfg.stale_book_ms / 1000
        for venue, book in self.books.items():
            if not book.valid or now - book.updated_at > stale_s:
                if venue not in self._stale_logged and self.trading_enabled:
                    self._stale_logged.add(venue)
                    self.emit(
                        "book_stale",
                        level=logging.WARNING,
                        venue=venue,
                        valid=book.valid,
                        age_ms=round(book.age(now) * 1000) if book.updated_at else None,
                    )
                return None
            if venue in self._stale_logged:
                self._stale_logged.discard(venue)
                self.emit("book_fresh", venue=venue)
        spreads = compute_spreads(self.books, self.cfg.size, self.cfg.fees_bps, self._vwaps)
        self.last_spreads = spreads
        if spreads is None or self.busy or not self.trading_enabled:
            return None
        return decide(
            spreads,
            position_direction=self.direction,
            entry_threshold_bps=self.cfg.entry_threshold_bps,
            exit_threshold_bps=self.cfg.exit_threshold_bps,
            can_add=self.can_add(spreads.mid),
        )

    def act(self, decision: Decision, detected_at: float) -> None:
        self.counters["decisions"] += 1
        spreads = self.last_spreads
        context = {
            "action": decision.action,
            "direction": decision.direction,
            "spread_bps": round(decision.spread_bps, 2),
            "mid": spreads.mid if spreads else None,
            "book_age_ms": {v: round(b.age() * 1000, 1) for v, b in self.books.items()},
        }
        if self.dry_run:
            key = f"{decision.action}:{decision.direction}"
            if (
                self._dry_run_last is None
                or self._dry_run_last[0] != key
                or time.monotonic() - self._dry_run_last[1] > 1
            ):
                self._dry_run_last = (key, time.monotonic())
                self.emit("spread_detected", dry_run=True, **context)
            return
        self.emit("spread_detected", **context)
        self.busy = True
        self.inflight = asyncio.get_running_loop().create_task(self._execute(decision, detected_at))

    async def _execute(self, decision: Decision, detected_at: float) -> None:
        try:
            long_venue, short_venue = direction_venues(decision.direction)
            if decision.action == "enter":
                plans = [
                    LegPlan(long_venue, self.cfg.markets[long_venue], "BUY", self.cfg.size),
                    LegPlan(short_venue, self.cfg.markets[short_venue], "SELL", self.cfg.size),
                ]
            else:
                plans = [
                    LegPlan(long_venue, self.cfg.markets[long_venue], "SELL", abs(self.sizes[long_venue]), True),
                    LegPlan(short_venue, self.cfg.markets[short_venue], "BUY", abs(self.sizes[short_venue]), True),
                ]
            await self.run_intent(
                "entry" if decision.action == "enter" else "exit",
                decision.direction,
                plans,
                decision.spread_bps,
                detected_at,
            )
        except Exception:
            log.exception("execution_crashed", extra={"pair": self.cfg.pair})
            self.unhedged = True  # the health loop re-checks the venues and closes any remainder
        finally:
            self.busy = False

    # --- execution -------------------------------------------------------------------------------

    def _no_record(self, kind: str, direction: str, exc: StoreUnavailable) -> None:
        # No record, no trade: a crash after sending could not be recovered without it.
        self.emit("intent_write_failed", level=logging.ERROR, kind=kind, direction=direction, error=str(exc))

    async def run_intent(
        self,
        kind: str,
        direction: str,
        plans: list[LegPlan],
        spread_bps: Decimal | None,
        detected_at: float | None = None,
    ) -> list[LegResult] | None:
        plans = [p for p in plans if p.size > 0]
        before = dict(self.sizes)
        client_ids = [client_id_for(self.venues[p.venue], 0) for p in plans]
        rows = [
            {
                "venue": p.venue,
                "market": p.market,
                "side": p.side,
                "size": p.size,
                "reduce_only": p.reduce_only,
                "attempt": 1,
                "client_id": cid,
                "state": "pending",
            }
            for p, cid in zip(plans, client_ids, strict=True)
        ]
        intent_id = 0
        pending = None
        if self.store is not None:
            try:
                pending = await self.store.begin_intent(
                    pair=self.cfg.pair,
                    kind=kind,
                    direction=direction,
                    size=max(p.size for p in plans),
                    spread_bps=spread_bps,
                    before=before,
                    legs=rows,
                )
            except StoreUnavailable as exc:
                return self._no_record(kind, direction, exc)
        failure = None
        try:
            prepared = [self.legs.prepare(p, cid) for p, cid in zip(plans, client_ids, strict=True)]  # while PG works
        finally:  # the statement in flight is always read, even if preparing failed
            if pending is not None:
                try:
                    intent_id = await pending.wait()
                except StoreUnavailable as exc:
                    failure = exc
        if failure is not None:
            return self._no_record(kind, direction, failure)
        results = list(
            await asyncio.gather(
                *(
                    self.legs.run(plan, intent_id, cid, before[plan.venue], prep)
                    for plan, cid, prep in zip(plans, client_ids, prepared, strict=True)
                )
            )
        )
        sent = [r.sent_at for r in results if r.sent_at is not None]
        detect_to_sent_us = None
        if detected_at is not None and len(sent) == len(results):
            detect_to_sent_us = round((max(sent) - detected_at) * 1e6, 1)
            self.latencies_us.append(detect_to_sent_us)
        self._apply(results)
        self.note_intent(intent_id, results)  # funding's intent, the carry's period (arb/carry.py)
        if kind == "entry" and all(r.complete for r in results) and spread_bps is not None:
            self.entry_spread_bps = spread_bps
        ok = all(r.complete for r in results)
        outcome = {
            "legs": [
                {
                    "venue": r.plan.venue,
                    "side": r.plan.side,
                    "size": str(r.plan.size),
                    "filled": str(r.filled),
                    "avg_price": str(r.avg_price) if r.avg_price else None,
                    "state": r.state,
                    "attempts": r.attempts,
                    "errors": r.errors[-3:],
                }
                for r in results
            ],
            "detect_to_sent_us": detect_to_sent_us,
            "sizes_after": as_text(self.sizes),
        }
        if self.store is not None:
            await self.db(self.store.finish_intent, intent_id, "done" if ok else "failed", outcome)
        event = {"entry": "entry_executed", "exit": "exit_executed"}.get(kind, f"{kind}_executed")
        self.counters[
            {"entry": "entries", "exit": "exits", "reduce": "reductions", "flatten": "flattens"}.get(kind, "rollbacks")
        ] += int(ok)
        self.emit(
            event if ok else f"{kind}_failed",
            level=logging.INFO if ok else logging.WARNING,
            intent_id=intent_id,
            direction=direction,
            spread_bps=round(spread_bps, 2) if spread_bps is not None else None,
            detect_to_sent_us=detect_to_sent_us,
            legs=outcome["legs"],
            realized_pnl=self.realized_pnl,
            sizes=outcome["sizes_after"],
        )
        if not ok:
            self.counters["failed"] += 1
            if kind == "entry":  # a venue refusing or failing now would be asked again at every book update
                self.entries_after = time.monotonic() + self.cfg.failed_entry_cooldown_s
        if not ok and kind != "rollback":  # a failed rollback is retried by the health loop, not here
            await self.ensure_hedged(intent_id, trusted=not any(r.state == "unknown" for r in results))
        await self.save_position()
        self.check_loss_limit()
        return results

    async def venue_sizes(self) -> dict[str, Decimal] | None:
        try:
            found = await asyncio.gather(
                *(
                    asyncio.wait_for(position_of(self.venues[v], self.cfg.markets[v]), self.cfg.leg_timeout_s)
                    for v in VENUES
                )
            )
        except (TimeoutError, errors.ExchangeError) as exc:
            self.emit("position_query_failed", level=logging.WARNING, error=str(exc)[:200])
            return None
        return dict(zip(VENUES, found, strict=True))

    async def ensure_hedged(self, intent_id: int = 0, trusted: bool = False) -> bool:
        """Make the venues delta-neutral: close any directional remainder reduce-only. True if hedged."""
        truth = None if trusted else await self.venue_sizes()
        if truth is not None and truth != self.sizes:
            self.emit("position_reconciled", level=logging.WARNING, ours=as_text(self.sizes), venues=as_text(truth))
            self.sizes = truth
            self.position_version += 1
        net = self.net
        if net == 0:
            if self.unhedged:
                self.emit("hedge_restored", sizes=as_text(self.sizes))
            self.unhedged = False
            return True
        self.unhedged = True
        # Reduce the exposure on the net's side by the net amount, reduce-only: the legs left match again.
        orders = repair(self.sizes)
        venue = orders[0][0]
        self.emit(
            "unhedged_position",
            level=logging.ERROR,
            venue=venue,
            net=str(net),
            intent_id=intent_id,
            sizes=as_text(self.sizes),
            action=f"closing {abs(net)} reduce-only",
        )
        for leg_venue, side, qty in orders:
            self.emit(
                "leg_rollback", level=logging.WARNING, venue=leg_venue, side=side, size=str(qty), intent_id=intent_id
            )
        results = await self.run_intent(
            "rollback",
            self.direction or f"net_{venue}",
            [LegPlan(v, self.cfg.markets[v], side, qty, True) for v, side, qty in orders],
            None,
        )
        if results is None or not all(r.complete for r in results):
            self.emit(
                "unhedged_position_remains",
                level=logging.ERROR,
                venue=venue,
                net=str(self.net),
                action="entries halted; retrying the close every few seconds",
            )
            return False
        self.unhedged = self.net != 0
        return not self.unhedged
