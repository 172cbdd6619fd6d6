"""Fixed demo accounts for the local perp simulators, so `make run` trades with no keys configured.

They only exist on the simulator faces (`python -m sim.perp` provisions them with sim/perp/launcher.py); they are
deterministic so a restarted engine finds the same accounts and positions.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.exchanges.perp.credentials import Credentials
from core.exchanges.perp.stark import EC_ORDER
from core.infra.config import ConfigError
from core.infra.security import register_secret


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
    return Credentials(
        DEMO_VEST_API_KEY,
        DEMO_VEST_SIGNING_KEY,
        DEMO_PARADEX_PRIVATE_KEY,
        DEMO_PARADEX_ACCOUNT,
        DEMO_ETH_ADDRESS,
        demo=True,
    )


class SimPorts(BaseModel):
    """`arb.sim` in config.yaml: where `python -m sim.perp` serves the Vest and Paradex faces (and so the
    demo venue URLs the engine uses when none are configured)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    vest_port: Annotated[int, Field(ge=1, le=65535)] = 8901
    paradex_port: Annotated[int, Field(ge=1, le=65535)] = 8902
    seed: int | None = 7
    spread_every_s: tuple[float, float] = (4.0, 10.0)
    funding_every_s: Annotated[float, Field(ge=0, le=86_400)] = 0.0  # 0: funding only on /sim/admin/funding
    funding_rate_bps: Annotated[Decimal, Field(ge=-100, le=100)] = Decimal("0.1")  # longs pay shorts when > 0


def sim_ports(arb_section: dict[str, Any]) -> SimPorts:
    """The `sim` part of config.yaml's `arb:` section alone (the simulators need no more of it)."""
    try:
        return SimPorts.model_validate(arb_section.get("sim") or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ConfigError(f"config.yaml: arb.sim.{where}: {error['msg']}") from None
