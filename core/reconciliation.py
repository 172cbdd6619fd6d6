"""One reconciliation pass over a broker connection: our orders (core.orders.reconcile) and what was
done at the venue outside Aristobot, checked with account-wide calls.

Each pass (every active connection every PASS_EVERY, a quiet one once per SWEEP_EVERY):
  - our orders synced, stuck ones re-enqueued, new trades stored (core.orders.reconcile);
  - the venue's open orders listed once (one account-wide call): the ones we did not place recorded as
    external (core.orders.venue_check); ours that it shows as we have them need no query of their own,
    the others are synced one by one (core.orders.reconcile);
  - our protective exits cancelled or changed there flagged, told and placed again while needed
    (core.venue_exits);
  - on a sweep only, balances against what our fills imply (core.orders.venue_balances): the balances
    are read before the trades are synced, so no fill falls between the two.
The start-up pass (workers.reconciliation) is the same pass over every connection.

A venue that is down stops the connection's pass where it failed (nothing guessed, nothing changed):
the report says `venue_unavailable`, a sweep cut short is due again, and the next pass retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from core.brokers import exchange_for
from core.exchanges.errors import ExchangeError, Unavailable
from core.exchanges.models import VenueOrder
from core.exchanges.ratelimit import background
from core.exchanges.spot.base import Exchange
from core.infra.db import session_scope
from core.models import BrokerConnection
from core.notifications import events as notifications
from core.orders import reconcile, venue_balances, venue_check
from core.orders.reconcile import BrokerReport
from core.venue_exits import check_exits

log = logging.getLogger(__name__)


def _failed(report: BrokerReport, what: str, err: ExchangeError) -> None:
    report.errors.append(f"{what}: {err}")
    report.venue_unavailable = report.venue_unavailable or isinstance(err, Unavailable)


@background()  # yields the venue's budget to orders
def reconcile_broker(
    broker_id: int,
    enqueue: Callable[[int], bool],
    *,
    placements_waiting: Callable[[], bool] = lambda: False,
    full_sweep: bool | None = None,
) -> BrokerReport:
    sweep = reconcile.take_sweep(broker_id) if full_sweep is None else full_sweep
    with session_scope() as session:
        broker = session.get(BrokerConnection, broker_id)
        if broker is None:
            return BrokerReport(broker_id, errors=["no such broker connection"])
        exchange, label = exchange_for(broker), broker.label
    seen: venue_balances.Snapshot | None = None
    report = BrokerReport(broker_id)
    if sweep:
        try:
            seen = venue_balances.snapshot(exchange)
        except ExchangeError as err:
            _failed(report, "balances", err)
    listing = None if report.venue_unavailable else _open_orders(broker_id, exchange, report)
    if not report.venue_unavailable:
        orders = reconcile.reconcile_broker(
            broker_id, enqueue, placements_waiting=placements_waiting, full_sweep=sweep, listed=listing
        )
        orders.external, orders.errors[:0] = report.external, report.errors
        report = orders
    if not report.venue_unavailable:
        report.exits_flagged = len(check_exits(broker_id, listing))
    if seen is not None and not report.venue_unavailable and listing is not None:
        report.balance_drifts = _balances(broker_id, label, exchange, seen)
    if sweep and report.venue_unavailable:
        reconcile.release_sweep(broker_id)
    if report.venue_unavailable:
        log.warning("reconcile_venue_unavailable", extra={"broker_id": broker_id, "errors": report.errors[:3]})
    return report


def _open_orders(broker_id: int, exchange: Exchange, report: BrokerReport) -> list[VenueOrder] | None:
    try:
        listing, found = venue_check.check_open_orders(broker_id, exchange)
    except ExchangeError as err:
        _failed(report, "open orders", err)
        return None
    report.external = len(found)
    return listing


def _balances(broker_id: int, label: str, exchange: Exchange, seen: venue_balances.Snapshot) -> int:
    with session_scope() as session:
        drifts = venue_balances.compare(session, broker_id, seen, venue_balances.market_assets(exchange))
        broker = session.get_one(BrokerConnection, broker_id)
        for drift in drifts:
            what = f"{drift.asset} {drift.difference:+f}"
            detail = {"what": what, "asset": drift.asset, "venue": str(drift.venue), "expected": str(drift.expected)}
            venue_check.record_finding(session, broker, "balance_drift", detail)
        user_id = broker.user_id
    for drift in drifts:
        notifications.venue_finding(
            user_id,
            "balance_drift",
            f"Balance changed at the venue on {label}: {drift.asset} {drift.difference:+f}",
            f"The venue holds {drift.venue:f} {drift.asset}; the fills Aristobot recorded since "
            f"{drift.since:%Y-%m-%d %H:%M} UTC imply {drift.expected:f}. A deposit, a withdrawal or a trade "
            "made outside Aristobot?",
            "/trading/",
            f"balance:{broker_id}:{drift.asset}:{drift.venue}",
        )
    return len(drifts)


def reconcile_all(enqueue: Callable[[int], bool]) -> list[BrokerReport]:
    reports = []
    for broker_id in reconcile.brokers_to_reconcile():
        try:
            reports.append(reconcile_broker(broker_id, enqueue))
        except ExchangeError as err:
            log.warning("reconcile_broker_failed", extra={"broker_id": broker_id, "error": str(err)})
    return reports
