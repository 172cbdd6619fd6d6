"""The arb engine against the real perp simulator faces (loopback HTTP/WS, signatures verified) and
the suite's real Postgres. Each test gets fresh venue accounts and its own pair name."""

from __future__ import annotations

import asyncio
import secrets
import time
from decimal import Decimal

import pytest
from eth_account import Account

from arb.config import Credentials, parse_arb_config
from arb.demo import provision_accounts
from core.exchanges.sim.perp_sim import start_perp_sims_in_thread
from core.exchanges.stark import EC_ORDER
from tests.support import remember_secret


@pytest.fixture(scope="module")
def sims():
    handle = start_perp_sims_in_thread(spread_every_s=(0, 0), seed=3)
    yield handle
    handle.stop()


def new_credentials(sims) -> Credentials:
    """A fresh account on both faces, registered like the demo accounts."""
    creds = Credentials(
        vest_api_key=remember_secret("vk-" + secrets.token_hex(12)),
        vest_signing_key=remember_secret(Account.create().key.hex()),
        paradex_private_key=remember_secret(f"0x{secrets.randbelow(EC_ORDER - 2) + 1:x}"),
        paradex_account=f"0x{secrets.randbits(200):x}")
    sims.call(provision_accounts, sims.vest, sims.paradex, creds)
    return creds


def arb_config(sims, **overrides):
    raw = {"pair": f"t-{secrets.token_hex(4)}", "leg_timeout_s": 0.6, "retry_backoff_ms": 10, "max_retries": 2,
           "stale_book_ms": 1500, "status_interval_s": 0.2, "max_position": "0.01",
           "vest": {"rest_url": sims.vest_rest, "ws_url": sims.vest_ws, "taker_fee_bps": "1"},
           "paradex": {"rest_url": sims.paradex_rest, "ws_url": sims.paradex_ws, "taker_fee_bps": "2"}}
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
