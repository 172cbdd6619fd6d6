import json
import time

from core.infra.bus import EXPECTED_PROCESSES, LIVENESS


def test_healthz_all_green(client, redis_client):
    redis_client.sadd(EXPECTED_PROCESSES, "worker")
    redis_client.hset(LIVENESS, "worker", json.dumps({"ts": time.time(), "pid": 1, "host": "h", "info": {}}))
    response = client.get("/healthz")
    body = response.get_json()
    assert response.status_code == 200
    assert body["ok"] and body["postgres"]["ok"] and body["redis"]["ok"]
    assert body["processes"]["worker"]["ok"]
    assert set(body["queues"]) == {"orders", "bots", "backtests", "maintenance"}


def test_healthz_503_when_expected_process_is_stale(client, redis_client):
    redis_client.sadd(EXPECTED_PROCESSES, "beat")
    redis_client.hset(LIVENESS, "beat", json.dumps({"ts": time.time() - 60, "pid": 1, "host": "h", "info": {}}))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["down"] == ["beat"]


def test_queue_depths_count_waiting_messages(redis_server):
    """On a database of its own: the suite's Celery worker consumes the real queues."""
    import redis

    from core.health import queue_depths

    other = redis.Redis.from_url(redis_server.replace("/0", "/7"))
    other.flushdb()
    other.rpush("orders", "a", "b")
    other.rpush("backtests", "c")
    assert queue_depths(other) == {"orders": 2, "bots": 0, "backtests": 1, "maintenance": 0}


def test_long_gone_unexpected_processes_are_forgotten(client, redis_client):
    now = time.time()
    redis_client.hset(LIVENESS, "bench-worker", json.dumps({"ts": now - 3600, "pid": 1, "host": "h", "info": {}}))
    redis_client.hset(LIVENESS, "recent-worker", json.dumps({"ts": now - 60, "pid": 1, "host": "h", "info": {}}))
    processes = client.get("/healthz").get_json()["processes"]
    assert "bench-worker" not in processes and processes["recent-worker"]["ok"] is False
    assert not redis_client.hexists(LIVENESS, "bench-worker")


OUTSIDER = {"REMOTE_ADDR": "203.0.113.7"}


def test_healthz_tells_an_outsider_only_up_or_down(client, redis_client):
    body = client.get("/healthz", environ_base=OUTSIDER).get_json()
    assert body == {"ok": body["ok"]}
    proxied = client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"}).get_json()
    assert set(proxied) == {"ok"}  # loopback through a proxy is still an outsider


def test_healthz_details_for_an_admin_from_anywhere(client, make_user, login, redis_client):
    client.environ_base.update(OUTSIDER)  # the whole session from outside ("strong" sessions pin the address)
    admin, password = make_user(is_admin=True)
    assert login(admin.username, password).status_code == 302
    body = client.get("/healthz").get_json()
    assert {"postgres", "redis", "processes", "queues"} <= set(body)


def test_healthz_no_details_for_a_trader_from_outside(client, make_user, login, redis_client):
    client.environ_base.update(OUTSIDER)
    trader, password = make_user()
    assert login(trader.username, password).status_code == 302
    assert set(client.get("/healthz").get_json()) == {"ok"}
