"""Build an adapter by venue name. The one place that knows which class serves which venue."""

from __future__ import annotations

from typing import Any

import redis as redis_lib

from core.exchanges.spot.base import Exchange
from core.exchanges.spot.binance import BinanceSpot
from core.exchanges.spot.bitget import BitgetSpot
from core.exchanges.spot.kraken import KrakenSpot

SIM_DEFAULT_URL = "http://127.0.0.1:8900"


class SimExchange(BinanceSpot):
    """The simulator speaks the Binance protocol (real signatures, verified by the simulator)."""

    venue = "sim"
    default_base_url = SIM_DEFAULT_URL


# The one list of spot venues (broker forms, config and data validation all read it); sim first.
VENUES: dict[str, type[Exchange]] = {
    "sim": SimExchange,
    "binance": BinanceSpot,
    "bitget": BitgetSpot,
    "kraken": KrakenSpot,
}


def make_exchange(
    venue: str,
    *,
    api_key: str,
    api_secret: str,
    passphrase: str | None = None,
    base_url: str | None = None,
    redis: redis_lib.Redis | str | None = None,
    **options: Any,
) -> Exchange:
    """An adapter for `venue` ("binance", "bitget", "kraken", "sim").

    `redis` (a client or a URL) makes nonces and rate limits shared by every process; without it
    they hold for this process only. `options` go to Exchange (timeout, max_attempts, ...).
    """
    try:
        cls = VENUES[venue]
    except KeyError:
        raise ValueError(f"unknown venue {venue!r}; expected one of {', '.join(sorted(VENUES))}") from None
    if venue == "bitget" and api_key and not passphrase:  # public market data (feeds, downloads) needs no key
        raise ValueError("bitget needs the API key's passphrase")
    client = redis_lib.Redis.from_url(redis) if isinstance(redis, str) else redis
    return cls(
        api_key=api_key, api_secret=api_secret, passphrase=passphrase, base_url=base_url, redis=client, **options
    )
