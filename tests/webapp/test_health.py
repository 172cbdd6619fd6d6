import json
import time

from core.bus import EXPECTED_PROCESSES, HEARTBEATS


def test_healthz_all_green(client, redis_client):
    redis_client.sadd(EXPECTED_PROCESSES, "worker")
    redis_client.hset(HEARTBEATS, "worker", json.dumps({"ts": time.time(), "pid": 1, "host": "h", "info": {}}))
    response = client.get("/healthz")
    body = response.get_json()
    assert response.status_code == 200
    assert body["ok"] and body["postgres"]["ok"] and body["redis"]["ok"]
    assert body["processes"]["worker"]["ok"]
    assert set(body["queues"]) == {"orders", "bots", "backtests", "maintenance"}


def test_healthz_503_when_expected_process_is_stale(client, redis_client):
    redis_client.sadd(EXPECTED_PROCESSES, "beat")
    redis_client.hset(HEARTBEATS, "beat", json.dumps({"ts": time.time() - 60, "pid": 1, "host": "h", "info": {}}))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["down"] == ["beat"]


def test_healthz_queue_depths(client, redis_client):
    redis_client.rpush("orders", "a", "b")
    assert client.get("/healthz").get_json()["queues"]["orders"] == 2
