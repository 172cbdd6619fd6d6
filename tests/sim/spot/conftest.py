"""A real simulator on loopback per test module, and a tiny signing client speaking Binance REST."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from urllib.parse import urlencode

import pytest
import requests

from sim.spot.server import SimHandle

_keys = itertools.count(1)


class SignedClient:
    """Signs exactly as Binance documents: HMAC-SHA256 hex of query+body, as sent."""

    def __init__(self, sim: SimHandle, api_key: str, secret: str):
        self.sim, self.api_key, self.secret = sim, api_key, secret
        self.session = requests.Session()

    def sign(self, payload: str) -> str:
        return hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()

    def call(
        self, method: str, path: str, *, body: dict | None = None, timestamp: int | None = None, **params: object
    ) -> requests.Response:
        params = {k: v for k, v in params.items() if v is not None}
        target = body if body is not None else params
        target["timestamp"] = int(time.time() * 1000) if timestamp is None else timestamp
        query, form = urlencode(params), urlencode(body or {})
        signature = self.sign(query + form)
        if body is not None:
            form += f"&signature={signature}"
        else:
            query += f"&signature={signature}"
        headers = {"X-MBX-APIKEY": self.api_key}
        if form:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return self.session.request(
            method, f"{self.sim.url}{path}?{query}", data=form or None, headers=headers, timeout=10
        )

    def ok(self, method: str, path: str, **params: object) -> dict | list:
        response = self.call(method, path, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def error(self, method: str, path: str, **params: object) -> tuple[int, int]:
        response = self.call(method, path, **params)
        assert response.status_code >= 400, response.text
        return response.status_code, response.json()["code"]

    def balances(self) -> dict[str, tuple[str, str]]:
        account = self.ok("GET", "/api/v3/account")
        return {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]}


@pytest.fixture
def client(sim: SimHandle) -> SignedClient:
    """A fresh funded account for each test, so tests never see each other's orders."""
    key = f"testKey{next(_keys)}x{int(time.time() * 1000) % 100000}"
    sim.create_account(key, "secret-" + key, {"USDT": "100000", "BTC": "2", "ETH": "20"})
    return SignedClient(sim, key, "secret-" + key)
