"""The Binance kline stream: where its websocket and REST history live (the feeds process and downloads;
the simulator speaks the same protocol), and its market messages (kline, bookTicker), raw or wrapped by a
combined stream."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from core.candles.candle import MINUTE_MS, ClosedCandle
from core.infra.config import Settings

WS_BASE = {
    "binance": "wss://stream.binance.com:9443",
    "bitget": "wss://ws.bitget.com/v2/ws/public",  # their protocols: core.candles.source_protocols
    "kraken": "wss://ws.kraken.com/v2",
}


def ws_base_url(venue: str, settings: Settings) -> str:
    if venue == "sim":
        return "ws" + settings.sim_url[len("http") :]
    try:
        return WS_BASE[venue]
    except KeyError:
        raise ValueError(
            f"no kline websocket known for venue {venue!r}; expected one of sim, {', '.join(sorted(WS_BASE))}"
        ) from None


def rest_base_url(venue: str, settings: Settings) -> str | None:
    """None: the adapter's own default URL."""
    return settings.sim_url if venue == "sim" else None


class MalformedMessage(ValueError):
    """A websocket message we cannot use; the text says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class KlineUpdate:
    candle: ClosedCandle  # the candle as of this message (not closed unless `closed`)
    closed: bool


@dataclass(frozen=True, slots=True)
class BookTick:
    venue: str
    symbol: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    update_id: int

    def fields(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "bid": str(self.bid),
            "bid_qty": str(self.bid_qty),
            "ask": str(self.ask),
            "ask_qty": str(self.ask_qty),
            "u": self.update_id,
        }


@dataclass(frozen=True, slots=True)
class ControlReply:
    """The answer to a SUBSCRIBE/UNSUBSCRIBE request."""

    request_id: int | None
    error: str | None
    symbol: str | None = None  # venues that answer per symbol rather than per request id (Bitget, Kraken)


def _decimal(data: dict[str, Any], key: str) -> Decimal:
    try:
        value = Decimal(data[key])
    except (KeyError, TypeError, InvalidOperation):
        raise MalformedMessage(f"field {key!r} missing or not a number") from None
    if not value.is_finite() or value < 0:
        raise MalformedMessage(f"field {key!r} is not a finite non-negative number")
    return value


def _integer(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedMessage(f"field {key!r} missing or not an integer")
    return value


def decode(raw: str | bytes) -> dict[str, Any]:
    """The JSON object of a message."""
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedMessage("not JSON") from None
    if not isinstance(message, dict):
        raise MalformedMessage("not a JSON object")
    return message


def parse_message(raw: str | bytes, venue: str) -> KlineUpdate | BookTick | ControlReply:
    return parse_decoded(decode(raw), venue)


def parse_decoded(message: dict[str, Any], venue: str) -> KlineUpdate | BookTick | ControlReply:
    """A decoded message (raw or wrapped by a combined stream)."""
    if "stream" in message and "data" in message:
        message = message["data"]
        if not isinstance(message, dict):
            raise MalformedMessage("combined stream data is not an object")
    if "result" in message or "error" in message:
        error = message.get("error")
        return ControlReply(
            message.get("id"), (error.get("msg") if isinstance(error, dict) else str(error)) if error else None
        )
    if message.get("e") == "kline":
        return _parse_kline(message, venue)
    if "u" in message and "b" in message and "a" in message:
        return BookTick(
            venue,
            _symbol(message),
            _decimal(message, "b"),
            _decimal(message, "B"),
            _decimal(message, "a"),
            _decimal(message, "A"),
            _integer(message, "u"),
        )
    raise MalformedMessage(f"unknown message type {str(message.get('e', '?'))[:20]!r}")


def _symbol(data: dict[str, Any]) -> str:
    symbol = data.get("s")
    if not isinstance(symbol, str) or not symbol.isalnum() or len(symbol) > 32:
        raise MalformedMessage("field 's' (symbol) missing or invalid")
    return symbol


def _parse_kline(message: dict[str, Any], venue: str) -> KlineUpdate:
    k = message.get("k")
    if not isinstance(k, dict):
        raise MalformedMessage("kline without 'k' object")
    if k.get("i") != "1m":
        raise MalformedMessage(f"kline interval {str(k.get('i'))[:8]!r}, expected 1m")
    open_time = _integer(k, "t")
    if open_time % MINUTE_MS or open_time <= 0:
        raise MalformedMessage(f"kline open time {open_time} is not on a minute boundary")
    o, h, low, c, v = (_decimal(k, key) for key in ("o", "h", "l", "c", "v"))
    if min(o, h, low, c) <= 0 or h < max(o, c) or low > min(o, c):
        raise MalformedMessage("kline prices inconsistent (high/low must contain open and close, all positive)")
    closed = k.get("x")
    if not isinstance(closed, bool):
        raise MalformedMessage("field 'x' (closed) missing or not a boolean")
    candle = ClosedCandle(venue, _symbol(k), "1m", open_time, o, h, low, c, v, _integer(message, "E"))
    return KlineUpdate(candle, closed)
