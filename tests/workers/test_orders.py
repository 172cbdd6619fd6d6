"""Order tasks on real Celery workers (subprocesses) against a real simulator over HTTP."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from core import tasks
from core.orders import placement
from tests.conftest import LOG_DIR, ROOT, process_env
from tests.trading_support import make_trader

pytestmark = pytest.mark.slow


@pytest.fixture()
def trader(make_user, sim, redis_client):
    return make_trader(make_user, sim)


def _wait_state(trader, order_id: int, states: set[str], timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = trader.reload(order_id).state
        if state in states:
            return state
        time.sleep(0.05)
    raise AssertionError(f"order {order_id} stayed {trader.reload(order_id).state}, expected {states}")


def _celery():
    from workers.celery_app import app

    return app


def test_order_task_with_lost_venue_response_places_exactly_once(celery_worker_process, trader, sim):
    sim.set_faults(lose_next_order_response=True)
    try:
        order_id = trader.order()
        result = _celery().send_task(tasks.PLACE_ORDER, args=[order_id])
        assert result.get(timeout=60)["state"] == "filled"
    finally:
        sim.clear_faults()
    assert len(trader.at_sim(order_id)) == 1
    order = _wait_fills_recorded(trader, order_id)
    assert order.state == "filled" and sum(f.quantity for f in order.fills) == order.filled_quantity


def _wait_fills_recorded(trader, order_id: int, timeout: float = 30.0):
    """The worker records a placement's fills in a batch (workers.orders.record_fills) a moment later."""
    deadline = time.monotonic() + timeout
    order = trader.reload(order_id)
    while time.monotonic() < deadline and sum(f.quantity for f in order.fills) < order.filled_quantity:
        time.sleep(0.1)
        order = trader.reload(order_id)
    return order


def test_fills_of_a_burst_are_recorded_from_the_order_answers_without_trades_queries(
    celery_worker_process, trader, sim
):
    """A trades query weighs 20 against 1 for the order itself: the fills of market orders come with
    the venue's answer (FULL response), so a burst costs no trades query at all."""
    from tests.trading_support import GarblingProxy

    proxy = GarblingProxy(sim.url)
    proxy.garble_orders = False  # a plain forwarding proxy, counting the trades queries that pass
    queries: list[str] = []
    forward = proxy.server.RequestHandlerClass.do_GET

    def counting(handler) -> None:
        queries.append(handler.path.split("?")[0])
        forward(handler)

    proxy.server.RequestHandlerClass.do_GET = counting
    trader.point_at(proxy.url)
    try:
        app = _celery()
        order_ids = [trader.order() for _ in range(6)]
        results = [app.send_task(tasks.PLACE_ORDER, args=[order_id]) for order_id in order_ids]
        assert {result.get(timeout=60)["state"] for result in results} == {"filled"}
        orders = [_wait_fills_recorded(trader, order_id) for order_id in order_ids]
    finally:
        proxy.close()
    assert all(sum(f.quantity for f in o.fills) == o.filled_quantity > 0 for o in orders)
    assert len({f.venue_trade_id for o in orders for f in o.fills}) == sum(len(o.fills) for o in orders)
    assert queries.count("/api/v3/myTrades") == 0


def test_redelivered_place_and_cancel_tasks_are_harmless(celery_worker_process, trader):
    from decimal import Decimal

    order_id = trader.order(type="limit", price=Decimal("1000"))
    app = _celery()
    first = app.send_task(tasks.PLACE_ORDER, args=[order_id])
    second = app.send_task(tasks.PLACE_ORDER, args=[order_id])
    assert {first.get(timeout=60)["state"], second.get(timeout=60)["state"]} <= {"open", "sent"}
    assert _wait_state(trader, order_id, {"open"}) == "open"
    cancel = tasks.send_cancel_order(order_id, app=app)
    assert cancel.get(timeout=60)["state"] == "cancelled"
    assert len(trader.at_sim(order_id)) == 1


def _start_worker(queue: str) -> subprocess.Popen:
    log = open(LOG_DIR / f"kill-worker-{queue}.log", "a")  # noqa: SIM115
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            "-Q",
            queue,
            "-c",
            "1",
            "-P",
            "solo",
            "-n",
            f"kill-{secrets.token_hex(3)}@%h",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=process_env(),
        stdout=log,
        stderr=log,
        start_new_session=True,
    )


def test_worker_killed_mid_placement_then_restarted_never_duplicates(infra, trader, sim):
    from decimal import Decimal

    queue = f"orders-kill-{secrets.token_hex(3)}"
    worker = _start_worker(queue)
    sim.set_faults(latency_ms=1500)  # the venue is slow: the worker is killed while the order is in flight
    try:
        order_id = trader.order(type="limit", price=Decimal("1000"))
        _celery().send_task(tasks.PLACE_ORDER, args=[order_id], queue=queue)
        assert _wait_state(trader, order_id, {"sent"}, timeout=60) == "sent"
        time.sleep(0.3)  # the POST is on the wire
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        time.sleep(1.6)  # the venue finishes the request it received
        sim.clear_faults()
    assert trader.reload(order_id).state == "sent"  # the truth: we do not know yet

    restarted = _start_worker(queue)
    try:
        # The redelivered task (or reconciliation, whichever comes first) asks the venue by client id.
        outcome = placement.sync(order_id, resend_after=timedelta(0))
        assert outcome.state == "open"
        assert len(trader.at_sim(order_id)) == 1
        again = _celery().send_task(tasks.PLACE_ORDER, args=[order_id], queue=queue)
        assert again.get(timeout=60)["state"] == "open"
        assert len(trader.at_sim(order_id)) == 1
    finally:
        os.killpg(restarted.pid, signal.SIGTERM)
        restarted.wait(30)
