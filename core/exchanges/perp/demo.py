"""Fixed demo accounts for the local perp simulators, so `make run` trades with no keys configured.

They only exist on the simulator faces (`python -m arb.perp_sims` provisions them); they are
deterministic so a restarted engine finds the same accounts and positions.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Protocol

from eth_account import Account

from core.exchanges.perp.credentials import Credentials
from core.exchanges.perp.stark import EC_ORDER, StarkKey
from core.security import register_secret


def _digest(label: str) -> int:
    return int(hashlib.sha256(f"aristobot-demo-{label}".encode()).hexdigest(), 16)


DEMO_VEST_API_KEY = f"demo-{_digest('vest-api-key') % 10**24:024d}"
DEMO_VEST_SIGNING_KEY = f"0x{_digest('vest-signing-key'):064x}"
DEMO_PARADEX_PRIVATE_KEY = f"0x{_digest('paradex-key') % (EC_ORDER - 1) + 1:x}"
DEMO_PARADEX_ACCOUNT = f"0x{_digest('paradex-account') >> 56:x}"
DEMO_ETH_ADDRESS = "0x" + "de" * 20


def demo_credentials() -> Credentials:
    for secret in (DEMO_VEST_API_KEY, DEMO_VEST_SIGNING_KEY, DEMO_PARADEX_PRIVATE_KEY):
        register_secret(secret)
    return Credentials(DEMO_VEST_API_KEY, DEMO_VEST_SIGNING_KEY, DEMO_PARADEX_PRIVATE_KEY, DEMO_PARADEX_ACCOUNT,
                       DEMO_ETH_ADDRESS, demo=True)


class VestAccounts(Protocol):
    """The Vest simulator face's account registry (sim code; core does not import it)."""

    def add_account(self, api_key: str, signing_addr: str, cash: Decimal = ...) -> None: ...


class ParadexAccounts(Protocol):
    """The Paradex simulator face's account registry (sim code; core does not import it)."""

    def add_account(self, address: int, public_key: int, cash: Decimal = ...) -> None: ...


def provision_accounts(vest_face: VestAccounts, paradex_face: ParadexAccounts, creds: Credentials, cash: Decimal = Decimal(100_000)) -> None:
    """Register an account on both faces (call on the simulators' loop thread)."""
    vest_face.add_account(creds.vest_api_key, Account.from_key(creds.vest_signing_key).address, cash)
    paradex_face.add_account(int(creds.paradex_account, 16), StarkKey(creds.paradex_private_key).public, cash)
