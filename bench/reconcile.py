"""`aristobot bench reconcile`: what reconciliation costs the venue for N idle connections.

N simulator connections (created once, reused) each have a filled order an hour old: recent enough to
be reconciled, too old to be active. One pass with their sweeps due measures the weight of a sweep,
the pass right after measures what a pass costs between sweeps; weight_per_min combines them with the
schedule (a pass every PASS_EVERY, a sweep every SWEEP_EVERY per connection). The weight is what our
limiter gave background work on the venue meanwhile, so other work on the same venue adds noise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from bench.accounts import bench_user, sim_connection, standing_orders
from core.exchanges.ratelimit import RequestClass, weight_spent
from core.infra.bus import get_redis, reconcile_swept
from core.infra.db import session_scope
from core.orders import reconcile

BENCH_USER = "bench-reconcile"
VENUE = "sim"
IDLE_FOR = timedelta(hours=1)


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


def _background_weight() -> int:
    return weight_spent(get_redis(), VENUE)[RequestClass.BACKGROUND]


def _pass(mine: set[int]) -> tuple[int, int, float]:
    """One reconciliation pass over the bench's due connections: (connections, weight, seconds)."""
    due = [broker_id for broker_id in reconcile.brokers_to_reconcile() if broker_id in mine]
    before, started = _background_weight(), time.perf_counter()
    for broker_id in due:
        reconcile.reconcile_broker(broker_id, lambda _order_id: False)
    return len(due), _background_weight() - before, time.perf_counter() - started


def run(sim_url: str, connections: int) -> ReconcileBenchResult:
    with session_scope() as session:
        user_id = bench_user(session, BENCH_USER).id
        broker_ids = [
            sim_connection(session, user_id, f"idle {number}", sim_url).id for number in range(1, connections + 1)
        ]
    standing_orders(broker_ids, resting=False, age=IDLE_FOR)
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
    )
