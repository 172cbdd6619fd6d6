"""Fault injection and the loopback admin API."""

from __future__ import annotations

import time

import pytest
import requests

from tests.sim.spot.conftest import SignedClient


@pytest.fixture(autouse=True)
def no_faults_left(sim):
    yield
    sim.clear_faults()


def test_429_with_retry_after_for_the_next_n_requests(sim):
    sim.set_faults(http_429_count=2, retry_after=3)
    answers = [requests.get(f"{sim.url}/api/v3/time", timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "3" and answers[0].json()["code"] == -1003


def test_5xx_rate_and_latency(sim):
    sim.set_faults(http_5xx_rate=1.0)
    response = requests.get(f"{sim.url}/api/v3/ping", timeout=5)
    assert response.status_code == 503 and response.json()["code"] == -1008
    sim.set_faults(http_5xx_rate=0.0, latency_ms=150)
    started = time.perf_counter()
    assert requests.get(f"{sim.url}/api/v3/ping", timeout=5).status_code == 200
    assert time.perf_counter() - started >= 0.15


def test_lost_order_response_still_places_the_order(sim, client: SignedClient):
    """The answer is lost, not the order: querying by client order id finds it (reconciliation's job)."""
    sim.set_faults(lose_next_order_response=True)
    with pytest.raises(requests.ConnectionError):
        client.call(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="BUY",
            type="MARKET",
            quantity="0.001",
            newClientOrderId="lost-1",
        )
    order = client.ok("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="lost-1")
    assert order["status"] == "FILLED"
    # Only the next answer is lost.
    again = client.ok("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
    assert again["status"] == "FILLED"


@pytest.mark.parametrize(
    "body",
    [
        {"latency_ms": -5},
        {"http_5xx_rate": 2},
        {"http_429_count": "many"},
        {"explode": True},
    ],
)
def test_bad_fault_settings_are_refused(sim, body):
    response = requests.post(f"{sim.url}/sim/admin/faults", json=body, timeout=5)
    assert response.status_code == 400 and response.json()["error"]
    assert requests.get(f"{sim.url}/api/v3/ping", timeout=5).status_code == 200


def test_account_provisioning_is_idempotent_and_sets_balances(sim):
    first = sim.create_account("provKey1", "s1", {"USDT": "500"})
    again = sim.create_account("provKey1", "s2", {"USDT": "750", "btc": "1"})
    assert first["account_id"] == again["account_id"]
    assert again["balances"]["USDT"]["free"] == "750.00000000" and again["balances"]["BTC"]["free"] == "1.00000000"
    assert SignedClient(sim, "provKey1", "s1").error("GET", "/api/v3/account") == (400, -1022)  # secret rotated
    assert SignedClient(sim, "provKey1", "s2").balances()["USDT"] == ("750.00000000", "0.00000000")


@pytest.mark.parametrize(
    "body",
    [
        {"api_secret": "s", "balances": {}},
        {"api_key": "has space", "api_secret": "s"},
        {"api_key": "okKey", "api_secret": ""},
        {"api_key": "okKey", "api_secret": "s", "balances": {"USDT": "-1"}},
        {"api_key": "okKey", "api_secret": "s", "balances": {"USDT": "lots"}},
        {"api_key": "okKey", "api_secret": "s", "balances": ["USDT"]},
    ],
)
def test_bad_account_requests_are_refused_and_create_nothing(sim, body):
    response = requests.post(f"{sim.url}/sim/admin/accounts", json=body, timeout=5)
    assert response.status_code == 400 and response.json()["error"]
    assert SignedClient(sim, "okKey", "s").error("GET", "/api/v3/account") == (401, -2015)


def test_admin_body_must_be_json(sim):
    response = requests.post(f"{sim.url}/sim/admin/accounts", data="not json", timeout=5)
    assert response.status_code == 400


def test_secrets_stay_out_of_reprs(sim):
    sim.create_account("reprKey1", "very-secret-value", {})
    credential = sim.state.credentials["reprKey1"]
    assert "very-secret-value" not in repr(credential) and "reprKey1" not in repr(credential)
