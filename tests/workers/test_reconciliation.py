"""Reconciliation against a real simulator: stuck `new` orders re-enqueued to a real worker, fills the
venue made without us stored once, unknown orders resolved by client order id."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core import brokers, tasks
from core.exchanges.models import OrderRequest
from core.exchanges.ratelimit import RequestClass, weight_spent
from core.infra.bus import get_redis, reconcile_swept
from core.infra.db import session_scope, utcnow
from core.models import BrokerConnection, Fill, Order
from core.orders import placement, reconcile
from tests.trading_support import make_trader

pytestmark = pytest.mark.slow


@pytest.fixture()
def trader(make_user, sim, redis_client):
    return make_trader(make_user, sim)


def _age(order_id: int, seconds: int) -> None:
    with session_scope() as session:
        order = session.get(Order, order_id)
        order.created_at = order.updated_at = utcnow() - timedelta(seconds=seconds)


def _maintenance_idle(timeout_s: float = 120.0) -> bool:
    """No reconciliation task queued or running (a worker's start-up pass sweeps every connection: the
    weight its sweeps spend on this venue must not be counted as this test's)."""
    redis = get_redis()
    deadline = time.monotonic() + timeout_s
    while redis.llen("maintenance") or redis.hlen("unacked"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_order_stuck_in_new_waits_while_the_orders_queue_works_off_a_backlog(trader):
    order_id = trader.order()
    _age(order_id, 60)
    enqueued: list[int] = []

    def enqueue(oid: int) -> bool:
        enqueued.append(oid)
        return True

    busy = reconcile.reconcile_broker(trader.broker_id, enqueue, placements_waiting=lambda: True)
    assert (busy.requeued, enqueued, trader.reload(order_id).state) == (0, [], "new")
    drained = reconcile.reconcile_broker(trader.broker_id, enqueue, placements_waiting=lambda: False)
    assert (drained.requeued, enqueued) == (1, [order_id])
    _age(order_id, int(reconcile.BACKLOG_PATIENCE.total_seconds()) + 60)  # a backlog never holds it for ever
    assert reconcile.reconcile_broker(trader.broker_id, enqueue, placements_waiting=lambda: True).requeued == 1


def test_order_stuck_in_new_is_reenqueued_and_placed_by_the_worker(celery_worker_process, trader):
    assert _maintenance_idle()  # the worker's start-up pass is over: the passes below are this test's
    order_id = trader.order()  # recorded while the queue was down: never enqueued
    _age(order_id, 60)
    from workers.celery_app import app

    # A pass may find the `orders` queue busy with other brokers' work (earlier tests left plenty) and
    # defer the requeue to the next pass, as it would in production: run passes until one requeues it.
    reports = []
    while not any(r["requeued"] for r in reports) and len(reports) < 30:
        reports.append(tasks.send_reconcile_broker(trader.broker_id, app=app).get(timeout=60))
        time.sleep(0.5)
    assert [r["requeued"] for r in reports][-1] == 1 and sum(r["requeued"] for r in reports) == 1, str(reports[-1])
    deadline = time.monotonic() + 30
    while trader.reload(order_id).state != "filled" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert trader.reload(order_id).state == "filled"
    assert len(trader.at_sim(order_id)) == 1


def test_fills_made_outside_the_pipeline_are_stored_once(trader):
    trader.order(type="limit", price=Decimal("1000"))  # gives the broker a recent BTCUSDT order to watch
    with session_scope() as session:
        exchange = brokers.exchange_for(session.get(BrokerConnection, trader.broker_id))
    outside = exchange.place_order(
        OrderRequest(
            client_order_id="manual-on-venue", symbol="BTCUSDT", side="buy", type="market", quantity=Decimal("0.002")
        )
    )
    assert outside.status == "filled"
    first = reconcile.sync_fills(trader.broker_id)
    assert first >= 1
    assert reconcile.sync_fills(trader.broker_id) == 0
    with session_scope() as session:
        rows = session.scalars(select(Fill).where(Fill.broker_id == trader.broker_id)).all()
    assert sum(f.quantity for f in rows if f.order_id is None) == Decimal("0.002")


def test_unknown_order_is_resolved_by_reconciliation(trader):
    with session_scope() as session:
        exchange = brokers.exchange_for(session.get(BrokerConnection, trader.broker_id))
    exchange.markets()
    exchange.base_url = "http://127.0.0.1:9"  # discard port: the venue is unreachable
    from core.orders import placement

    order_id = trader.order(type="limit", price=Decimal("1000"))
    assert placement.place(order_id).state == "unknown"
    exchange.base_url = trader.sim.url
    report = reconcile.reconcile_broker(trader.broker_id, lambda _id: False, resend_after=timedelta(0))
    assert report.changed == 1 and not report.errors
    assert trader.reload(order_id).state == "open"
    assert len(trader.at_sim(order_id)) == 1


def _background_weight() -> int:
    return weight_spent(get_redis(), "sim")[RequestClass.BACKGROUND]


def test_a_quiet_connection_is_swept_once_per_sweep_interval_not_every_pass(trader):
    assert _maintenance_idle()
    order_id = trader.order()
    placement.place(order_id)
    _age(order_id, 3600)  # filled an hour ago: history, no activity
    get_redis().delete(reconcile_swept(trader.broker_id))
    assert trader.broker_id in reconcile.brokers_to_reconcile()
    before = _background_weight()
    swept = reconcile.reconcile_broker(trader.broker_id, lambda _id: False)
    sweep_weight = _background_weight() - before
    assert not swept.errors and sweep_weight >= 20  # one trades query for its symbol
    assert trader.broker_id not in reconcile.brokers_to_reconcile()  # until SWEEP_EVERY has passed
    before = _background_weight()
    assert not reconcile.reconcile_broker(trader.broker_id, lambda _id: False).errors
    assert _background_weight() == before  # between sweeps a quiet connection costs the venue nothing


def test_a_connection_with_a_resting_order_is_checked_every_pass_for_that_order_only(trader):
    resting = trader.order(type="limit", price=Decimal("1000"))
    placement.place(resting)
    _age(resting, 3600)
    reconcile.take_sweep(trader.broker_id)
    for _ in range(2):
        assert trader.broker_id in reconcile.brokers_to_reconcile()
        before = _background_weight()
        report = reconcile.reconcile_broker(trader.broker_id, lambda _id: False)
        assert (report.synced, report.errors) == (1, [])
        assert _background_weight() - before == 4  # one order query, no trades query
