"""Shared plumbing of Exchange: retry policy, transport errors, masking — over real local HTTP."""

from __future__ import annotations

import copy
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from core.exchanges.errors import InsufficientFunds, MalformedResponse, Unavailable
from core.exchanges.models import OcoRequest
from core.exchanges.spot.base import mask
from core.exchanges.spot.binance import BinanceSpot
from tests.core.exchanges.conftest import Reply
from tests.core.exchanges.spot.test_binance import DOC_KEY, DOC_SECRET, EXCHANGE_INFO, order_result


def test_reads_retry_with_exponential_backoff_then_succeed(venue, sleeps):
    venue.on("GET", "/api/v3/time", Reply(500, ""), Reply(503, ""), Reply(body={"serverTime": 7}))
    exchange = BinanceSpot(base_url=venue.url, sleep=sleeps, backoff_s=0.1)
    assert exchange.server_time_ms() == 7
    assert sleeps.calls == [0.1, 0.2]


def test_a_json_answer_missing_a_field_is_malformed_not_retried(venue, sleeps):
    venue.on("GET", "/api/v3/time", Reply(body={"unexpected": True}))
    exchange = BinanceSpot(base_url=venue.url, sleep=sleeps, max_attempts=2)
    with pytest.raises(MalformedResponse, match="lacks 'serverTime'"):
        exchange.server_time_ms()
    assert len(venue.calls("GET", "/api/v3/time")) == 1  # a well-formed JSON answer is not retried


def test_timeout_is_unavailable_and_names_the_call(venue, sleeps):
    venue.on("GET", "/api/v3/time", Reply(body={"serverTime": 1}, delay_s=0.6))
    exchange = BinanceSpot(base_url=venue.url, sleep=sleeps, timeout=0.2, max_attempts=1)
    with pytest.raises(Unavailable, match=r"no answer within 0.2s to GET /api/v3/time"):
        exchange.server_time_ms()


def test_mask_keeps_only_a_prefix():
    assert mask("abcdefghijklmnopqrstuvwxyz") == "'abcd…'"
    assert mask("short") == "'…'" and mask(None) == "''"


# ---- emulated OCO (a Binance symbol without ocoAllowed) --------------------------------------------


@pytest.fixture
def no_oco_binance(venue, sleeps) -> BinanceSpot:
    info = copy.deepcopy(EXCHANGE_INFO)
    info["symbols"][0]["ocoAllowed"] = False
    venue.on("GET", "/api/v3/time", lambda _r: Reply(body={"serverTime": int(time.time() * 1000)}))
    venue.json("GET", "/api/v3/exchangeInfo", info)
    return BinanceSpot(
        api_key=DOC_KEY, api_secret=DOC_SECRET, base_url=venue.url, timeout=1.0, sleep=sleeps, max_attempts=1
    )


def emulated_sell_oco() -> OcoRequest:
    return OcoRequest(
        client_order_id="ab-50",
        symbol="ETHBTC",
        side="sell",
        quantity=Decimal("1"),
        limit_price=Decimal("0.06"),
        stop_price=Decimal("0.04"),
    )


def test_emulated_oco_refused_take_profit_cancels_the_stop(no_oco_binance, venue):
    refusal = {"code": -2010, "msg": "Account has insufficient balance for requested action."}
    venue.on(
        "POST",
        "/api/v3/order",
        lambda r: (
            Reply(body=order_result(clientOrderId=r.params["newClientOrderId"]))
            if r.params["newClientOrderId"].endswith("-sl")
            else Reply(status=400, body=refusal)
        ),
    )
    venue.json("DELETE", "/api/v3/order", order_result(clientOrderId="ab-50-sl", status="CANCELED"))
    with pytest.raises(InsufficientFunds):
        no_oco_binance.place_oco(emulated_sell_oco())
    assert [c.params["origClientOrderId"] for c in venue.calls("DELETE", "/api/v3/order")] == ["ab-50-sl"]
    assert venue.calls("POST", "/api/v3/orderList/oco") == []


def test_emulated_oco_take_profit_with_unknown_outcome_keeps_the_stop(no_oco_binance, venue):
    venue.on(
        "POST",
        "/api/v3/order",
        lambda r: (
            Reply(body=order_result(clientOrderId=r.params["newClientOrderId"]))
            if r.params["newClientOrderId"].endswith("-sl")
            else Reply(status=503, body="")
        ),
    )
    venue.on("GET", "/api/v3/order", Reply(status=503, body=""))  # the lookup cannot tell either
    with pytest.raises(Unavailable):
        no_oco_binance.place_oco(emulated_sell_oco())
    # The take-profit may exist: cancelling the stop could leave it unprotected. Reconciliation decides.
    assert venue.calls("DELETE", "/api/v3/order") == []
    assert [c.params["newClientOrderId"] for c in venue.calls("POST", "/api/v3/order")] == ["ab-50-sl", "ab-50-tp"]


def test_the_environment_proxy_and_ca_bundle_are_read_once_when_the_adapter_is_built(monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    behind = BinanceSpot(api_key=DOC_KEY, api_secret=DOC_SECRET, base_url="https://api.example")
    bypassed = BinanceSpot(api_key=DOC_KEY, api_secret=DOC_SECRET, base_url="https://internal.example")
    monkeypatch.delenv("HTTPS_PROXY")
    assert behind.session.proxies["https"] == "http://proxy.example:3128"
    assert behind.session.verify == str(bundle)
    assert "https" not in bypassed.session.proxies
    assert behind.session.trust_env is False  # not read again for every request


def test_twenty_threads_sharing_one_exchange_keep_their_connections(venue, sleeps, caplog):
    """The bots worker runs 20 ticks at once on one exchange object: none of their connections is thrown away."""
    venue.on("GET", "/api/v3/time", *[Reply(body={"serverTime": 7}, delay_s=0.2) for _ in range(40)])
    exchange = BinanceSpot(base_url=venue.url, sleep=sleeps)
    with caplog.at_level("WARNING", logger="urllib3.connectionpool"), ThreadPoolExecutor(20) as pool:
        assert list(pool.map(lambda _: exchange.server_time_ms(), range(40))) == [7] * 40
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
