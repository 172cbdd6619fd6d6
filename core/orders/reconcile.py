"""Reconciliation: our orders against each venue, at worker start-up and on a schedule.

Resolves `sent`/`unknown` orders by client order id, re-enqueues orders stuck in `new` (e.g. Redis
was down when they were submitted), refreshes live orders (settling emulated OCOs) and stores any
fill the ledger does not have yet. It never guesses: every change comes from the venue's answer.

Its cost scales with activity, not with connections: a connection with live orders or an order changed
within ACTIVE_WINDOW is checked every pass, and its trades only for the symbols that changed; the full
sweep of every symbol traded within FILLS_LOOKBACK (fills made outside the platform) runs once per
SWEEP_EVERY per connection, and a quiet connection (nothing live, nothing recent) is visited only then.
What was done at the venue outside Aristobot (external orders, protective exits, balances) is checked
by core.reconciliation around this module's pass, with account-wide calls. All of it is background work
for the venue's budget (core.exchanges.ratelimit): orders go first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from core.brokers import exchange_for
from core.exchanges.errors import ExchangeError, Unavailable
from core.exchanges.models import VenueOrder, oco_leg_ids
from core.exchanges.ratelimit import background
from core.infra.bus import get_redis, reconcile_swept
from core.infra.db import session_scope, utcnow
from core.models import BrokerConnection, Fill, Order, User
from core.orders import fills, placement, trailing_watch
from core.orders.states import OrderState

log = logging.getLogger(__name__)

STUCK_NEW_AFTER = timedelta(seconds=20)
# Past this age an order still `new` is re-enqueued even while the queue holds a backlog: a queue that is
# never empty (sustained load) must not hold a lost placement back for ever.
BACKLOG_PATIENCE = timedelta(minutes=10)
FILLS_LOOKBACK = timedelta(days=2)
PASS_EVERY = timedelta(seconds=30)  # the beat schedule of workers.reconciliation
ACTIVE_WINDOW = timedelta(minutes=10)
SWEEP_EVERY = timedelta(minutes=10)
LISTED = (OrderState.OPEN.value, OrderState.PARTIALLY_FILLED.value)  # venue statuses spelled as our states
LIVE = (OrderState.SENT.value, OrderState.UNKNOWN.value, OrderState.OPEN.value, OrderState.PARTIALLY_FILLED.value)


@dataclass
class BrokerReport:
    broker_id: int
    synced: int = 0
    changed: int = 0
    requeued: int = 0
    fills_added: int = 0
    external: int = 0  # orders found at the venue that we did not place (core.orders.venue_check)
    exits_flagged: int = 0  # protective exits cancelled or changed at the venue (core.venue_exits)
    balance_drifts: int = 0  # balances off from what our fills imply (core.orders.venue_balances)
    venue_unavailable: bool = False  # the pass stopped there; the next one tries again
    errors: list[str] = field(default_factory=list)


def sweep_is_due(broker_id: int) -> bool:
    return not get_redis().exists(reconcile_swept(broker_id))


def take_sweep(broker_id: int) -> bool:
    """True once per SWEEP_EVERY per connection (all workers): this pass sweeps every recent symbol."""
    return bool(get_redis().set(reconcile_swept(broker_id), "1", nx=True, ex=int(SWEEP_EVERY.total_seconds())))


def active_brokers() -> set[int]:
    """Connections with live orders, orders waiting to be sent, or an order changed within ACTIVE_WINDOW."""
    with session_scope() as session:
        return set(
            session.scalars(
                select(Order.broker_id)
                .where(Order.state.in_(LIVE + (OrderState.NEW.value,)) | (Order.updated_at >= utcnow() - ACTIVE_WINDOW))
                .distinct()
            )
        )


def brokers_to_reconcile() -> list[int]:
    """The active connections, and the quiet ones (of active users) whose sweep is due: a quiet connection
    costs the venue a sweep per SWEEP_EVERY (its account-wide checks, and trades of recent symbols)."""
    active = active_brokers()
    with session_scope() as session:
        quiet = set(
            session.scalars(
                select(BrokerConnection.id).join(User, User.id == BrokerConnection.user_id).where(User.is_active)
            )
        )
    return sorted(active | {broker_id for broker_id in quiet - active if sweep_is_due(broker_id)})


def release_sweep(broker_id: int) -> None:
    """A sweep the venue cut short is due again at the next pass."""
    get_redis().delete(reconcile_swept(broker_id))


def _aware(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


@background()  # yields the venue's budget to orders; a re-send inside it is an order again
def reconcile_broker(
    broker_id: int,
    enqueue: Callable[[int], bool],
    *,
    stuck_after: timedelta = STUCK_NEW_AFTER,
    resend_after: timedelta = placement.RESEND_AFTER,
    placements_waiting: Callable[[], bool] = lambda: False,
    full_sweep: bool | None = None,
    listed: Sequence[VenueOrder] | None = None,
) -> BrokerReport:
    """Re-enqueue this broker's orders stuck in `new` and sync its live ones with the venue, then its
    trades: of every symbol traded within FILLS_LOOKBACK when `full_sweep` (None: when take_sweep says
    so), else only of the symbols with an order changed within ACTIVE_WINDOW.

    While `placements_waiting()` (the `orders` queue still holds a backlog), an order still `new` is most
    likely waiting in it: a copy per pass would only pile up no-op tasks in front of the real ones (a
    200 alerts/s burst doubled the queue that way). It is re-enqueued by a pass after the queue drained,
    or once older than BACKLOG_PATIENCE.

    `listed`, the venue's open orders just listed (one account-wide call): a live order it shows as we
    have it needs no query of its own, so a connection with 500 resting orders costs one call a pass."""
    report = BrokerReport(broker_id)
    cutoff = utcnow() - stuck_after
    with session_scope() as session:
        stuck_since = dict(
            session.execute(
                select(Order.id, Order.created_at).where(
                    Order.broker_id == broker_id,
                    Order.state == OrderState.NEW.value,
                    Order.created_at < cutoff,
                    ~trailing_watch.waiting_watch(),  # an emulated trailing stop is watched, not stuck
                )
            ).all()
        )
        live_rows = session.execute(
            select(Order.id, Order.client_order_id, Order.state, Order.filled_quantity, Order.type)
            .where(Order.broker_id == broker_id, Order.state.in_(LIVE), Order.source != "external")
            .order_by(Order.id)
        ).all()
    as_listed = unchanged_at_venue(live_rows, listed) if listed is not None else set()
    report.synced += len(as_listed)
    live = [row[0] for row in live_rows if row[0] not in as_listed]
    if stuck_since and placements_waiting():
        patience = utcnow() - BACKLOG_PATIENCE
        stuck_since = {oid: created for oid, created in stuck_since.items() if _aware(created) < patience}
    for order_id in stuck_since:
        if enqueue(order_id):
            report.requeued += 1
    for order_id in live:
        try:
            outcome = placement.sync(order_id, resend_after=resend_after)
        except Unavailable as err:
            # The venue is down: asking it about every other order and symbol now only piles up
            # timeouts. The next pass tries again; nothing is guessed meanwhile.
            report.errors.append(f"venue unavailable: {err}")
            report.venue_unavailable = True
            break
        except ExchangeError as err:
            report.errors.append(f"order {order_id}: {err}")
            continue
        report.synced += 1
        report.changed += int(outcome.changed)
    else:
        sweep = take_sweep(broker_id) if full_sweep is None else full_sweep
        report.fills_added = sync_fills(broker_id, report, symbols_since=None if sweep else ACTIVE_WINDOW)
    log.info(
        "reconciled_broker",
        extra={
            "broker_id": broker_id,
            "synced": report.synced,
            "changed": report.changed,
            "requeued": report.requeued,
            "fills_added": report.fills_added,
            "errors": len(report.errors),
        },
    )
    return report


@background()
def unchanged_at_venue(rows: Sequence[Sequence[Any]], listed: Sequence[VenueOrder]) -> set[int]:
    """The ids among (id, client id, state, filled, type) rows that the venue lists exactly as we have
    them: open or partially filled, same filled quantity (an OCO: both legs resting, nothing filled)."""
    by_client = {o.client_order_id: o for o in listed if o.client_order_id}
    same = set()
    for order_id, client_id, state, filled, order_type in rows:
        if order_type == "oco":
            legs = [by_client.get(leg) for leg in oco_leg_ids(client_id or "")]
            if state == OrderState.OPEN.value and all(leg is not None and leg.filled_qty == 0 for leg in legs):
                same.add(order_id)
            continue
        seen = by_client.get(client_id or "")
        if seen is not None and seen.status == state and seen.filled_qty == filled and state in LISTED:
            same.add(order_id)
    return same


def sync_fills(broker_id: int, report: BrokerReport | None = None, *, symbols_since: timedelta | None = None) -> int:
    """New venue trades of every symbol we traded within FILLS_LOOKBACK (or only `symbols_since`), stored
    once in our ledger."""
    since = utcnow() - FILLS_LOOKBACK
    symbols_from = since if symbols_since is None else utcnow() - symbols_since
    added = 0
    with session_scope() as session:
        broker = session.get(BrokerConnection, broker_id)
        if broker is None:
            return 0
        symbols = list(
            session.scalars(
                select(Order.symbol).where(Order.broker_id == broker_id, Order.updated_at >= symbols_from).distinct()
            )
        )
        exchange = exchange_for(broker)
        for symbol in symbols:
            last = session.scalar(
                select(func.max(Fill.traded_at)).where(Fill.broker_id == broker_id, Fill.symbol == symbol)
            )
            start = max(last or since, since)
            try:
                trades = exchange.trades(symbol, start_ms=int(start.astimezone(UTC).timestamp() * 1000))
            except ExchangeError as err:
                if report is not None:
                    report.errors.append(f"trades {symbol}: {err}")
                if isinstance(err, Unavailable):
                    break
                continue
            venue_ids = {t.order_id for t in trades}
            orders = (
                {
                    o.venue_order_id: o
                    for o in session.scalars(
                        select(Order).where(Order.broker_id == broker_id, Order.venue_order_id.in_(venue_ids))
                    )
                    if o.venue_order_id is not None
                }
                if venue_ids
                else {}
            )
            added += fills.record_fills(session, broker.user_id, broker.id, trades, orders)
    return added


def report_dict(report: BrokerReport) -> dict[str, Any]:
    return asdict(report)


def age_of(stamp: datetime) -> timedelta:
    return datetime.now(UTC) - (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC))
