"""Symbol mapping across venues: THE one table that says which symbol of which venue is which asset.

A bot's signal source may be another venue than its execution broker (a bot on Kraken `XBTUSD` driven by
Binance `BTCUSDT`): the asset is what they share. Dollar quotes (USD, USDT, USDC) count as one asset for
signals; the first listing of an asset on a venue is the one a bot from another venue maps to. The
websocket spelling differs from the REST one on Kraken (`BTC/USD` vs `XBTUSD`): both are here.
"""

from __future__ import annotations

from dataclasses import dataclass


class UnknownMapping(ValueError):
    """No listing of this asset (or symbol) on that venue; the text is meant for the trader."""


@dataclass(frozen=True, slots=True)
class Listing:
    asset: str  # canonical, e.g. "BTC/USD"
    venue: str
    symbol: str  # as the venue's REST API and our orders spell it
    ws_symbol: str  # as the venue's websocket spells it


def _dollar(base: str, sim: bool = True, kraken: tuple[str, str] | None = None) -> list[Listing]:
    """One asset quoted in dollars: USDT on sim, Binance and Bitget, USD (then USDT) on Kraken."""
    asset = f"{base}/USD"
    rows = [Listing(asset, venue, f"{base}USDT", f"{base}USDT") for venue in ("binance", "bitget")]
    if sim:
        rows.insert(0, Listing(asset, "sim", f"{base}USDT", f"{base}USDT"))
    if kraken is not None:
        kraken_base, ws_base = kraken
        rows.append(Listing(asset, "kraken", f"{kraken_base}USD", f"{ws_base}/USD"))
        rows.append(Listing(asset, "kraken", f"{kraken_base}USDT", f"{ws_base}/USDT"))
    return rows


LISTINGS: tuple[Listing, ...] = (
    *_dollar("BTC", kraken=("XBT", "BTC")),
    *_dollar("ETH", kraken=("ETH", "ETH")),
    *_dollar("SOL", kraken=("SOL", "SOL")),
    *_dollar("BNB", kraken=None),
    *_dollar("XRP", sim=False, kraken=("XRP", "XRP")),
    *_dollar("ADA", sim=False, kraken=("ADA", "ADA")),
    *_dollar("DOGE", sim=False, kraken=("XDG", "DOGE")),
    *_dollar("LTC", sim=False, kraken=("LTC", "LTC")),
)

_BY_SYMBOL = {(row.venue, row.symbol): row for row in LISTINGS}
_BY_WS = {(row.venue, row.ws_symbol): row for row in LISTINGS}
_FIRST: dict[tuple[str, str], Listing] = {}
for _row in LISTINGS:
    _FIRST.setdefault((_row.asset, _row.venue), _row)


def listing(venue: str, symbol: str) -> Listing:
    try:
        return _BY_SYMBOL[(venue, symbol)]
    except KeyError:
        raise UnknownMapping(f"{symbol} on {venue} is not in the symbol table; choose the source by hand") from None


def asset_of(venue: str, symbol: str) -> str:
    return listing(venue, symbol).asset


def symbol_on(venue: str, asset: str) -> str:
    try:
        return _FIRST[(asset, venue)].symbol
    except KeyError:
        raise UnknownMapping(f"{asset} is not listed on {venue}") from None


def map_symbol(from_venue: str, symbol: str, to_venue: str) -> str:
    """The same asset's symbol on another venue (identity on the same venue)."""
    if from_venue == to_venue:
        return symbol
    return symbol_on(to_venue, asset_of(from_venue, symbol))


def ws_symbol(venue: str, symbol: str) -> str:
    """How the venue's websocket spells a symbol (unlisted symbols are spelled as given)."""
    row = _BY_SYMBOL.get((venue, symbol))
    return row.ws_symbol if row else symbol


def from_ws_symbol(venue: str, spelled: str) -> str:
    row = _BY_WS.get((venue, spelled))
    return row.symbol if row else spelled
