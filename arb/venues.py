"""Build the two venue adapters from the config and credentials (Paradex authenticated, its pool of
presigned orders filled)."""

from __future__ import annotations

import contextlib
from decimal import Decimal

from arb.config import ArbConfig
from core.exchanges import errors
from core.exchanges.perp.credentials import Credentials
from core.exchanges.perp.paradex import ParadexSigner, ParadexVenue
from core.exchanges.perp.venue import PerpVenue
from core.exchanges.perp.vest import VestVenue


async def build_venues(cfg: ArbConfig, creds: Credentials) -> dict[str, PerpVenue]:
    vest = VestVenue(
        rest_url=cfg.vest.rest_url,
        ws_url=cfg.vest.ws_url,
        api_key=creds.vest_api_key,
        signing_key=creds.vest_signing_key,
    )
    signer = ParadexSigner(creds.paradex_private_key, creds.paradex_account, cfg.paradex_chain_id)
    paradex = ParadexVenue(rest_url=cfg.paradex.rest_url, ws_url=cfg.paradex.ws_url, signer=signer)
    if creds.paradex_eth_address:
        # Idempotent and required once per account; if it fails, authenticate() below says whether it matters.
        with contextlib.suppress(errors.ExchangeError):
            await paradex.onboard(creds.paradex_eth_address)
    await paradex.authenticate()
    # MARKET orders of the configured size need no signing at detection time.
    paradex.add_presigned_pool(cfg.paradex_market, Decimal(cfg.size), depth=3)
    return {"vest": vest, "paradex": paradex}
