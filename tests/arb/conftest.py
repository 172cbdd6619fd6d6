"""The arb engine against the real perp simulator faces (loopback HTTP/WS, signatures verified) and
the suite's real Postgres. Each test gets fresh venue accounts and its own pair name."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import urllib.error
import urllib.request
from decimal import Decimal

from eth_account import Account

from arb.config import parse_arb_config
from arb.engine import ArbEngine
from arb.store import ArbStore
from arb.venues import build_venues
from core.exchanges.perp.credentials import Credentials
from core.exchanges.perp.stark import EC_ORDER
from sim.perp.launcher import provision_accounts
from tests.support import remember_secret


async def start_engine(cfg, creds, store: ArbStore | None = None, **engine_kwargs) -> ArbEngine:
    """A started engine whose two books are live: a spread injected before the first snapshot arrived
    (a slow start on a loaded machine) would pass unseen."""
    engine = ArbEngine(cfg, await build_venues(cfg, creds), store or ArbStore(), **engine_kwargs)
    await engine.start()
    await wait_for(lambda: all(book.valid for book in engine.books.values()), 10, "both books")
    return engine


def new_credentials(sims) -> Credentials:
    """A fresh account on both faces, registered like the demo accounts."""
    creds = Credentials(
        vest_api_key=remember_secret("vk-" + secrets.token_hex(12)),
        vest_signing_key=remember_secret(Account.create().key.hex()),
        paradex_private_key=remember_secret(f"0x{secrets.randbelow(EC_ORDER - 2) + 1:x}"),
        paradex_account=f"0x{secrets.randbits(200):x}",
    )
    sims.call(provision_accounts, sims.vest, sims.paradex, creds)
    return creds


def arb_config(sims, **overrides):
    raw = {
        "pair": f"t-{secrets.token_hex(4)}",
        "leg_timeout_s": 0.6,
        "retry_backoff_ms": 10,
        "max_retries": 2,
        "stale_book_ms": 1500,
        "status_interval_s": 0.2,
        "max_position": "0.01",
        "vest": {"rest_url": sims.vest_rest, "ws_url": sims.vest_ws, "taker_fee_bps": "1"},
        "paradex": {"rest_url": sims.paradex_rest, "ws_url": sims.paradex_ws, "taker_fee_bps": "2"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return parse_arb_config(raw)


def inject(sims, venue: str, bps: float, seconds: float) -> None:
    sims.vest.ledger.market.inject_spread(venue, bps, seconds)


def sim_positions(sims, creds: Credentials, market: str = "BTC") -> dict[str, Decimal]:
    def read():
        vest = sims.vest.ledger.accounts[creds.vest_api_key].positions.get(market, (Decimal(0), 0))[0]
        paradex_id = str(int(creds.paradex_account, 16))
        paradex = sims.paradex.ledger.accounts[paradex_id].positions.get(market, (Decimal(0), 0))[0]
        return {"vest": vest, "paradex": paradex}

    return sims.call(read)


def admin(sims, venue: str, path: str, body) -> tuple[int, dict]:
    """POST to a perp simulator face's admin endpoint (sim/perp/admin.py): (status, JSON answer)."""
    port = getattr(sims, venue).port
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/sim/admin/{path}", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def events(engine, name: str) -> list[dict]:
    return [e for e in engine.events if e["event"] == name]


async def wait_for(predicate, timeout: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class TcpProxy:
    """A real TCP forwarder in front of a server; `down()` cuts every connection and refuses new ones."""

    def __init__(self, target_port: int):
        import socket
        import threading

        self.target_port = target_port
        self._socket, self._threading = socket, threading
        self.port = 0
        self._listener = None
        self._conns: list = []
        self._lock = threading.Lock()
        self.up()

    def up(self) -> None:
        s = self._socket.socket()
        s.setsockopt(self._socket.SOL_SOCKET, self._socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self.port = s.getsockname()[1]
        self._listener = s
        self._threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = self._socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()

    def down(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(self._socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        self._listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(self._socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
