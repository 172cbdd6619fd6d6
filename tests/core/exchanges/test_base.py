"""Shared plumbing of Exchange: retry policy, transport errors, masking — over real local HTTP."""

from __future__ import annotations

import pytest

from core.exchanges.base import mask
from core.exchanges.binance import BinanceSpot
from core.exchanges.errors import MalformedResponse, Unavailable
from tests.core.exchanges.conftest import Reply


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
