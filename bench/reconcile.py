"""`aristobot bench reconcile`: what reconciliation costs, in the venue's budget and in time.

N simulator connections (created once, reused) each have a filled order an hour old: recent enough to
be reconciled, too old to be active. One pass with their sweeps due measures the weight of a sweep,
the pass right after measures what a pass costs between sweeps; weight_per_min combines them with the
schedule (a pass every PASS_EVERY, a sweep every SWEEP_EVERY per connection). The weight is what our
limiter gave background work on the venue meanwhile, so other work on the same venue adds noise.

One more connection holds `busy_orders` (500) resting orders (placed once, reused): `reconcile_500_orders_s` is
one pass over it (its open orders listed once, external orders, protective exits and our orders checked
against the listing), and `startup_reconcile_s` the pass a worker runs at start-up over every one of
these connections (N + 1) with their sweeps due (balances, trades), one task per connection run two at
a time as the maintenance worker's two processes do.
Both passes are the full reconciliation of core.reconciliation, as the maintenance worker runs it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from bench.accounts import RESTING_PRICE, SYMBOL, bench_user, sim_connection, standing_orders
from core import reconciliation
from core.exchanges.ratelimit import RequestClass, weight_spent
from core.infra.bus import get_redis, reconcile_swept
from core.infra.db import session_scope
from core.models import Order
from core.orders import placement, reconcile
from core.orders.states import OrderState
from core.orders.submit import OrderIntent, record_order

BENCH_USER = "bench-reconcile"
VENUE = "sim"
IDLE_FOR = timedelta(hours=1)
BUSY_ORDERS = 500
TARGET_500_ORDERS_S = 5.0
TARGET_STARTUP_S = 10.0
STARTUP_CONCURRENCY = 2  # the start-up pass is one task per connection on the maintenance worker (-c 2, Procfile)


@dataclass
class ReconcileBenchResult:
    connections: int
    reconciled_on_sweep: int
    weight_per_sweep: int
    reconciled_between_sweeps: int
    weight_per_pass_between_sweeps: int
    weight_per_min: float
    weight_per_min_if_swept_every_pass: float  # what checking every recent connection every pass costs
    sweep_seconds: float
    open_orders_on_busy_connection: int
    reconcile_500_orders_s: float
    weight_500_orders_pass: int
    startup_connections: int
    startup_reconcile_s: float
    meets_targets: bool


def _background_weight() -> int:
    return weight_spent(get_redis(), VENUE)[RequestClass.BACKGROUND]


def _noop(_order_id: int) -> bool:
    return False


def _pass(mine: set[int]) -> tuple[int, int, float]:
    """One reconciliation pass over the bench's due connections: (connections, weight, seconds)."""
    due = [broker_id for broker_id in reconcile.brokers_to_reconcile() if broker_id in mine]
    before, started = _background_weight(), time.perf_counter()
    for broker_id in due:
        reconciliation.reconcile_broker(broker_id, _noop)
    return len(due), _background_weight() - before, time.perf_counter() - started


def _resting_orders(broker_id: int, user_id: int, count: int) -> int:
    """Bring the busy connection up to `count` buy limits resting at the venue (placed on the first run)."""
    with session_scope() as session:
        have = session.scalar(
            select(func.count()).where(Order.broker_id == broker_id, Order.state == OrderState.OPEN.value)
        )
        intent = OrderIntent(
            broker_id=broker_id, symbol=SYMBOL, side="buy", type="limit", quantity=Decimal("0.01"), price=RESTING_PRICE
        )
        new = [record_order(session, user_id, intent).id for _ in range(count - (have or 0))]
    for order_id in new:
        placement.place(order_id)
    return (have or 0) + len(new)


def _timed(broker_ids: list[int], *, sweep: bool, concurrency: int = 1) -> tuple[float, int]:
    before, started = _background_weight(), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(
            pool.map(lambda broker_id: reconciliation.reconcile_broker(broker_id, _noop, full_sweep=sweep), broker_ids)
        )
    return time.perf_counter() - started, _background_weight() - before


def run(sim_url: str, connections: int, busy_orders: int = BUSY_ORDERS) -> ReconcileBenchResult:
    with session_scope() as session:
        user_id = bench_user(session, BENCH_USER).id
        broker_ids = [
            sim_connection(session, user_id, f"idle {number}", sim_url).id for number in range(1, connections + 1)
        ]
        busy_id = sim_connection(session, user_id, "busy", sim_url).id
    standing_orders(broker_ids, resting=False, age=IDLE_FOR)
    resting = _resting_orders(busy_id, user_id, busy_orders)
    reconciliation.reconcile_broker(busy_id, _noop, full_sweep=True)  # its baseline, as any earlier pass
    busy_s, busy_weight = _timed([busy_id], sweep=False)
    startup_s, _ = _timed([busy_id, *broker_ids], sweep=True, concurrency=STARTUP_CONCURRENCY)

    get_redis().delete(*(reconcile_swept(broker_id) for broker_id in broker_ids))  # as after SWEEP_EVERY
    swept, sweep_weight, sweep_seconds = _pass(set(broker_ids))
    between, between_weight, _ = _pass(set(broker_ids))
    passes_per_min = 60 / reconcile.PASS_EVERY.total_seconds()
    sweeps_per_min = 60 / reconcile.SWEEP_EVERY.total_seconds()
    return ReconcileBenchResult(
        connections=connections,
        reconciled_on_sweep=swept,
        weight_per_sweep=sweep_weight,
        reconciled_between_sweeps=between,
        weight_per_pass_between_sweeps=between_weight,
        weight_per_min=round(sweep_weight * sweeps_per_min + between_weight * passes_per_min, 1),
        weight_per_min_if_swept_every_pass=round(sweep_weight * passes_per_min, 1),
        sweep_seconds=round(sweep_seconds, 2),
        open_orders_on_busy_connection=resting,
        reconcile_500_orders_s=round(busy_s, 3),
        weight_500_orders_pass=busy_weight,
        startup_connections=connections + 1,
        startup_reconcile_s=round(startup_s, 2),
        meets_targets=busy_s < TARGET_500_ORDERS_S and startup_s < TARGET_STARTUP_S,
    )
