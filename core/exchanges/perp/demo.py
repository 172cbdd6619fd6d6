"""Fixed demo accounts for the local perp simulators, so `make run` trades with no keys configured.

They only exist on the simulator faces (`python -m sim.perp` provisions them with sim/perp/launcher.py); they are
deterministic so a restarted engine finds the same accounts and positions.
"""

from __future__ import annotations

import hashlib

from core.exchanges.perp.credentials import Credentials
from core.exchanges.perp.stark import EC_ORDER
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
