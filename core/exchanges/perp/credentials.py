"""The keys of one Vest account and one Paradex account, the pair the arbitrage engine trades on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Credentials:
    vest_api_key: str
    vest_signing_key: str
    paradex_private_key: str
    paradex_account: str
    paradex_eth_address: str | None = None
    demo: bool = False

    def __repr__(self) -> str:
        return f"Credentials(demo={self.demo}, vest_api_key=***, paradex_account={self.paradex_account[:10]}…)"

    __str__ = __repr__
