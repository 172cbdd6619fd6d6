"""Where each venue's market streams and REST history live (the feeds process and downloads)."""

from __future__ import annotations

from core.config import Settings

WS_BASE = {"binance": "wss://stream.binance.com:9443"}


def ws_base_url(venue: str, settings: Settings) -> str:
    if venue == "sim":
        return "ws" + settings.sim_url[len("http"):]
    try:
        return WS_BASE[venue]
    except KeyError:
        raise ValueError(f"no kline websocket known for venue {venue!r}; expected one of sim, "
                         f"{', '.join(sorted(WS_BASE))}") from None


def rest_base_url(venue: str, settings: Settings) -> str | None:
    """None: the adapter's own default URL."""
    return settings.sim_url if venue == "sim" else None
