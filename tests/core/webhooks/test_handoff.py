"""Web → workers hand-off of accepted alerts: one wake-up per drain, FIFO, nothing dropped on failure."""

from __future__ import annotations

import json

import pytest
import redis
from celery import Celery

from core.webhooks.handoff import DRAIN_TASK, PENDING_KEY, WAKE_KEY, drain, hand_off

SPARE_DB = 7  # no Celery worker of the test session consumes this database's queues


@pytest.fixture()
def spare_url(redis_server) -> str:
    return f"{redis_server.rsplit('/', 1)[0]}/{SPARE_DB}"


@pytest.fixture()
def spare_redis(spare_url):
    client = redis.Redis.from_url(spare_url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture()
def broker_app(spare_url):
    app = Celery("aristobot", set_as_current=False)
    app.config_from_object("celeryconfig")
    app.conf.broker_url = spare_url
    return app


def wake_ups(client: redis.Redis) -> list[str]:
    return [json.loads(message)["headers"]["task"] for message in client.lrange("orders", 0, -1)]


def test_a_burst_of_alerts_wakes_one_worker_and_is_drained_in_arrival_order(spare_redis, broker_app):
    for alert_id in (11, 12, 13):
        assert hand_off(alert_id, spare_redis, broker_app)
    assert wake_ups(spare_redis) == [DRAIN_TASK]  # the flag held back the second and third wake-up

    seen: list[int] = []
    assert drain(spare_redis, seen.append) == 3
    assert seen == [11, 12, 13]
    assert spare_redis.llen(PENDING_KEY) == 0


def test_an_alert_arriving_once_a_drain_started_wakes_another_worker(spare_redis, broker_app):
    hand_off(1, spare_redis, broker_app)

    def process(alert_id: int) -> None:
        if alert_id == 1:  # arrives while this worker drains: the flag was cleared, so it wakes one more
            hand_off(2, spare_redis, broker_app)

    assert drain(spare_redis, process) == 2
    assert wake_ups(spare_redis) == [DRAIN_TASK, DRAIN_TASK]


def test_a_failing_alert_and_the_ones_behind_it_go_back_in_front_in_order(spare_redis, broker_app):
    for alert_id in (1, 2, 3, 4, 5):
        hand_off(alert_id, spare_redis, broker_app)
    done: list[int] = []

    def process(alert_id: int) -> None:
        if alert_id == 3:
            raise RuntimeError("database restarting")
        done.append(alert_id)

    with pytest.raises(RuntimeError):
        drain(spare_redis, process)
    assert done == [1, 2]
    assert spare_redis.lrange(PENDING_KEY, 0, -1) == ["3", "4", "5"]  # the task's retry takes them again


def test_redis_down_is_reported_and_the_wake_flag_never_sticks(spare_redis, broker_app):
    down = redis.Redis(port=1, socket_connect_timeout=0.2)
    assert hand_off(1, down, broker_app) is False  # the alert is stored: the recovery sweep processes it

    broker_app.conf.broker_url = "redis://127.0.0.1:1/0"  # the broker refuses the wake-up task
    broker_app.conf.broker_connection_retry = False
    broker_app.conf.broker_transport_options = {"max_retries": 0, "socket_connect_timeout": 0.2}
    assert hand_off(2, spare_redis, broker_app) is False
    assert spare_redis.get(WAKE_KEY) is None  # so the next alert tries to wake a worker again
