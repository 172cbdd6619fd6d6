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

from core.exchanges.sim.server import start_in_thread
from core.orders import service
from tests.conftest import LOG_DIR, ROOT, process_env
from tests.trading_support import make_trader

pytestmark = pytest.mark.slow
PLACE = "workers.orders.place_order"


@pytest.fixture(scope="module")
def sim():
    handle = start_in_thread(seed=9)
    yield handle
    handle.stop()


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
        result = _celery().send_task(PLACE, args=[order_id], queue="orders")
        assert result.get(timeout=60)["state"] == "filled"
    finally:
        sim.clear_faults()
    assert len(trader.at_sim(order_id)) == 1
    order = trader.reload(order_id)
    assert order.state == "filled" and sum(f.quantity for f in order.fills) == order.filled_quantity


def test_redelivered_place_and_cancel_tasks_are_harmless(celery_worker_process, trader):
    from decimal import Decimal

    order_id = trader.order(type="limit", price=Decimal("1000"))
    app = _celery()
    first = app.send_task(PLACE, args=[order_id], queue="orders")
    second = app.send_task(PLACE, args=[order_id], queue="orders")
    assert {first.get(timeout=60)["state"], second.get(timeout=60)["state"]} <= {"open", "sent"}
    assert _wait_state(trader, order_id, {"open"}) == "open"
    cancel = app.send_task("workers.orders.cancel_order", args=[order_id], queue="orders")
    assert cancel.get(timeout=60)["state"] == "cancelled"
    assert len(trader.at_sim(order_id)) == 1


def _start_worker(queue: str) -> subprocess.Popen:
    log = open(LOG_DIR / f"kill-worker-{queue}.log", "a")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", queue, "-c", "1",
         "-P", "solo", "-n", f"kill-{secrets.token_hex(3)}@%h", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=process_env(), stdout=log, stderr=log, start_new_session=True)


def test_worker_killed_mid_placement_then_restarted_never_duplicates(infra, trader, sim):
    from decimal import Decimal

    queue = f"orders-kill-{secrets.token_hex(3)}"
    worker = _start_worker(queue)
    sim.set_faults(latency_ms=1500)  # the venue is slow: the worker is killed while the order is in flight
    try:
        order_id = trader.order(type="limit", price=Decimal("1000"))
        _celery().send_task(PLACE, args=[order_id], queue=queue)
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
        outcome = service.sync(order_id, resend_after=timedelta(0))
        assert outcome.state == "open"
        assert len(trader.at_sim(order_id)) == 1
        again = _celery().send_task(PLACE, args=[order_id], queue=queue)
        assert again.get(timeout=60)["state"] == "open"
        assert len(trader.at_sim(order_id)) == 1
    finally:
        os.killpg(restarted.pid, signal.SIGTERM)
        restarted.wait(30)
