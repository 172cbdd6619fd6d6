"""Build the two venue adapters from the config and credentials (Paradex authenticated, a pool of presigned
orders filled for each pair's market), shared by every pair of the engine; and check that each pair's markets
are listed by its venues."""

from __future__ import annotations

import contextlib
from decimal import Decimal

from arb.config import ArbConfig
from core.exchanges import errors
from core.exchanges.perp.credentials import Credentials
from core.exchanges.perp.paradex import ParadexSigner, ParadexVenue
from core.exchanges.perp.venue import PerpVenue
from core.exchanges.perp.vest import VestVenue


async def build_venues(
    cfg: ArbConfig, creds: Credentials, pairs: list[ArbConfig] | None = None
) -> dict[str, PerpVenue]:
    """The venues from cfg's shared settings, ready for every pair of `pairs` (default: cfg's own)."""
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
    for pair in pairs or [cfg]:
        paradex.add_presigned_pool(pair.paradex_market, Decimal(pair.size), depth=3)
    if pairs and len(pairs) > 1:  # two pairs trading at the same instant find their connections open too
        vest.warm_connections = paradex.warm_connections = 4
    return {"vest": vest, "paradex": paradex}


async def unlisted_market(venues: dict[str, PerpVenue], pairs: list[ArbConfig]) -> str | None:
    """What is wrong if a pair names a market its venue does not list (one line), else None."""
    for name, venue in venues.items():
        listed = await venue.markets()
        for pair in pairs:
            if pair.markets[name] not in listed:
                return (
                    f"arb: config.yaml: pair {pair.pair}: {name}_market {pair.markets[name]!r} is not a market on "
                    f"{name} (it lists {', '.join(sorted(listed)[:20])})"
                )
    return None
