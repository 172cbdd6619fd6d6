"""Web → workers hand-off of accepted alerts: one wake-up per drain, FIFO, nothing dropped on failure."""

from __future__ import annotations

import json

import pytest
import redis

from core import tasks
from core.infra.bus import WEBHOOKS_PENDING, WEBHOOKS_WAKE
from core.webhooks.handoff import POP_BATCH, drain, hand_off
from tests.core.webhooks.fixtures import sender


def wake_ups(client: redis.Redis) -> list[str]:
    return [json.loads(message)["headers"]["task"] for message in client.lrange("orders", 0, -1)]


def test_a_burst_of_alerts_wakes_one_worker_and_is_drained_in_arrival_order(orders_queue):
    app = sender()
    for alert_id in (11, 12, 13):
        assert hand_off(alert_id, orders_queue, app)
    assert wake_ups(orders_queue) == [tasks.DRAIN_ALERTS]  # the flag held back the second and third wake-up

    seen: list[list[int]] = []
    assert drain(orders_queue, seen.append, app) == 3
    assert seen == [[11, 12, 13]]  # one batch: one transaction records them
    assert orders_queue.llen(WEBHOOKS_PENDING) == 0


def test_an_alert_arriving_once_a_drain_started_wakes_another_worker(orders_queue):
    app = sender()
    hand_off(1, orders_queue, app)

    def process(alert_ids: list[int]) -> None:
        if alert_ids == [1]:  # arrives while this worker drains: the flag was cleared, so it wakes one more
            hand_off(2, orders_queue, app)

    assert drain(orders_queue, process, app) == 2
    assert wake_ups(orders_queue) == [tasks.DRAIN_ALERTS, tasks.DRAIN_ALERTS]


def test_a_failing_batch_and_the_alerts_behind_it_stay_queued_in_order(orders_queue, monkeypatch):
    monkeypatch.setattr("core.webhooks.handoff.POP_BATCH", 2)
    app = sender()
    for alert_id in (1, 2, 3, 4, 5):
        hand_off(alert_id, orders_queue, app)
    done: list[int] = []

    def process(alert_ids: list[int]) -> None:
        if 3 in alert_ids:
            raise RuntimeError("database restarting")  # the batch's transaction recorded none of them
        done.extend(alert_ids)

    with pytest.raises(RuntimeError):
        drain(orders_queue, process, app)
    assert done == [1, 2]
    assert orders_queue.lrange(WEBHOOKS_PENDING, 0, -1) == ["3", "4", "5"]  # the task's retry takes them again


def test_a_backlog_is_taken_a_slice_at_a_time_so_a_worker_can_stop_between_tasks(orders_queue):
    """A worker's warm shutdown waits for its running tasks: a drain ends after its slice and hands the rest
    to a new task instead of holding the worker for as long as the backlog lasts."""
    app = sender()
    for alert_id in range(1, 10):
        hand_off(alert_id, orders_queue, app)
    assert wake_ups(orders_queue) == [tasks.DRAIN_ALERTS]
    seen: list[int] = []

    assert drain(orders_queue, seen.extend, app, slice_s=0) == POP_BATCH  # one batch, then the slice is spent
    assert seen == list(range(1, POP_BATCH + 1))
    assert orders_queue.lrange(WEBHOOKS_PENDING, 0, -1) == [str(alert_id) for alert_id in range(POP_BATCH + 1, 10)]
    assert wake_ups(orders_queue) == [tasks.DRAIN_ALERTS, tasks.DRAIN_ALERTS]  # the rest has its own task

    assert drain(orders_queue, seen.extend, app) == 9 - POP_BATCH  # that task, within its slice, takes the rest
    assert seen == list(range(1, 10))
    assert wake_ups(orders_queue) == [tasks.DRAIN_ALERTS, tasks.DRAIN_ALERTS]  # an empty list wakes no one


def test_redis_down_is_reported_and_the_wake_flag_never_sticks(orders_queue):
    app = sender()
    down = redis.Redis(port=1, socket_connect_timeout=0.2)
    assert hand_off(1, down, app) is False  # the alert is stored: the recovery sweep processes it

    app.conf.broker_url = "redis://127.0.0.1:1/0"  # the broker refuses the wake-up task
    app.conf.task_publish_retry = False
    app.conf.broker_transport_options = {"max_retries": 0, "socket_connect_timeout": 0.2}
    assert hand_off(2, orders_queue, app) is False
    assert orders_queue.get(WEBHOOKS_WAKE) is None  # so the next alert tries to wake a worker again
