"""Build the two venue adapters from the config, with on-the-wire send timestamps for latency."""

from __future__ import annotations

import contextlib
import time
from decimal import Decimal
from types import SimpleNamespace

import aiohttp
from eth_keys.datatypes import PrivateKey

from arb.config import ArbConfig, Credentials
from arb.legs import SENT_AT
from core.exchanges import errors
from core.exchanges.paradex import ParadexSigner, ParadexVenue
from core.exchanges.perp import PerpOrderRequest, PerpOrderResult, PerpVenue
from core.exchanges.vest import VestVenue


class ArbVestVenue(VestVenue):
    """VestVenue whose orders can be signed ahead of sending (the signature is ~0.4 ms of CPU)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # A parsed key object instead of hex text: eth_account skips parsing and deriving the public
        # key on every signature (~150 us less per order). The object never reaches a log or a repr.
        self._signing_key = PrivateKey(bytes.fromhex(kwargs["signing_key"].removeprefix("0x")))

    def prepare(self, req: PerpOrderRequest) -> dict:
        return self.signed_order(req)

    async def send_prepared(self, req: PerpOrderRequest, body: dict) -> PerpOrderResult:
        reply = await self._call("POST", "/orders", body=body)
        if not isinstance(reply, dict) or not isinstance(reply.get("id"), str):
            raise errors.MalformedResponse(f"order reply without id: {reply!r:.100}", venue=self.name)
        return PerpOrderResult(self.name, reply["id"], req.client_id, "NEW", raw={"nonce": body["order"]["nonce"]})


async def _on_sent(session: aiohttp.ClientSession, ctx: SimpleNamespace, params: object) -> None:
    box = SENT_AT.get()
    if box is not None:
        box.append(time.perf_counter())


def traced_session(timeout_s: float) -> aiohttp.ClientSession:
    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(_on_sent)
    trace.on_request_chunk_sent.append(_on_sent)  # the body follows the headers: the last one wins
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s), trace_configs=[trace],
                                 connector=aiohttp.TCPConnector(limit=16, keepalive_timeout=60))


def _use_traced_session(venue: PerpVenue, timeout_s: float) -> None:
    # JsonHttp creates its session lazily when none is set; handing it ours adds the send trace.
    venue._http._session = traced_session(timeout_s)  # type: ignore[attr-defined]


async def build_venues(cfg: ArbConfig, creds: Credentials) -> dict[str, PerpVenue]:
    vest = ArbVestVenue(rest_url=cfg.vest.rest_url, ws_url=cfg.vest.ws_url, api_key=creds.vest_api_key,
                     signing_key=creds.vest_signing_key)
    signer = ParadexSigner(creds.paradex_private_key, creds.paradex_account, cfg.paradex_chain_id)
    paradex = ParadexVenue(rest_url=cfg.paradex.rest_url, ws_url=cfg.paradex.ws_url, signer=signer)
    timeout = max(cfg.leg_timeout_s * 2, 5.0)
    _use_traced_session(vest, timeout)
    _use_traced_session(paradex, timeout)
    if creds.paradex_eth_address:
        # Idempotent and required once per account; if it fails, authenticate() below says whether it matters.
        with contextlib.suppress(errors.ExchangeError):
            await paradex.onboard(creds.paradex_eth_address)
    await paradex.authenticate()
    # MARKET orders of the configured size need no signing at detection time.
    paradex.add_presigned_pool(cfg.paradex_market, Decimal(cfg.size), depth=3)
    return {"vest": vest, "paradex": paradex}
