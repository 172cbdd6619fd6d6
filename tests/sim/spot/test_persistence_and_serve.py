"""State survives a restart; `serve` shuts down cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal

import requests

from sim.spot.server import start_in_thread
from tests.sim.spot.conftest import SignedClient


def test_restart_keeps_balances_and_open_orders(tmp_path):
    first = start_in_thread(seed=3, state_dir=tmp_path)
    try:
        first.create_account("persistKey", "persist-secret", {"USDT": "1000"})
        client = SignedClient(first, "persistKey", "persist-secret")
        bid = Decimal(
            requests.get(f"{first.url}/api/v3/ticker/bookTicker", params={"symbol": "BTCUSDT"}, timeout=5).json()[
                "bidPrice"
            ]
        )
        price = str((bid * Decimal("0.5")).quantize(Decimal("0.01")))
        order = client.ok(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price=price,
            newClientOrderId="kept-1",
        )
        balances = client.balances()
    finally:
        first.stop()
    assert (tmp_path / "state.json").stat().st_mode & 0o077 == 0  # the venue's key store is private

    second = start_in_thread(seed=3, state_dir=tmp_path)
    try:
        client = SignedClient(second, "persistKey", "persist-secret")
        assert client.balances() == balances
        (kept,) = client.ok("GET", "/api/v3/openOrders", symbol="BTCUSDT")
        assert kept["orderId"] == order["orderId"] and kept["clientOrderId"] == "kept-1"
        duplicate = client.call(
            "POST",
            "/api/v3/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price=price,
            newClientOrderId="kept-1",
        )
        assert duplicate.json()["code"] == -2010
        client.ok("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="kept-1")
        assert client.balances()["USDT"] == ("1000.00000000", "0.00000000")
        fresh = client.ok("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
        assert fresh["orderId"] > order["orderId"]
    finally:
        second.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_saves_while_running_and_exits_cleanly_on_sigterm(tmp_path):
    port = _free_port()
    code = f"from sim.spot.server import serve; serve(port={port}, seed=5, state_dir={str(tmp_path)!r})"
    process = subprocess.Popen([sys.executable, "-c", code], cwd=os.getcwd())
    try:
        deadline = time.time() + 20
        while True:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/sim/health", timeout=1).json()
                break
            except requests.ConnectionError:
                assert time.time() < deadline, "simulator did not start"
                time.sleep(0.1)
        assert health["ok"] is True and "BTCUSDT" in health["symbols"] and health["seed"] == 5
        requests.post(
            f"http://127.0.0.1:{port}/sim/admin/accounts",
            json={"api_key": "serveKey", "api_secret": "x", "balances": {"USDT": "1"}},
            timeout=5,
        )
        # Saved while running, by a forked child (the event loop never writes the file itself): the account is
        # on disk while the simulator goes on answering.
        state = tmp_path / "state.json"
        while not (state.exists() and "serveKey" in state.read_text()):
            assert time.time() < deadline + 20, "the running simulator never saved its state"
            time.sleep(0.2)
        assert requests.get(f"http://127.0.0.1:{port}/sim/health", timeout=1).json()["ok"] is True
        requests.post(
            f"http://127.0.0.1:{port}/sim/admin/accounts",
            json={"api_key": "lastKey", "api_secret": "x", "balances": {"USDT": "1"}},
            timeout=5,
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    saved = (tmp_path / "state.json").read_text()
    assert "serveKey" in saved and "lastKey" in saved  # the last change saved on the way out, after any child
