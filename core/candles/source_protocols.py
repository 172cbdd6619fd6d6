"""The kline websocket of each heartbeat venue: where to connect, how to subscribe, how to read its messages.

- sim and Binance: combined streams in the URL (`<sym>@kline_1m`, `<sym>@bookTicker`), `k.x` marks the close
  (core.exchanges.spot.binance_klines).
- Bitget (v2 public websocket): `{"op":"subscribe","args":[{"instType":"SPOT","channel":"candle1m","instId":...}]}`,
  pushes `{"action":"snapshot"|"update","arg":{...},"data":[[ts,o,h,l,c,baseVol,quoteVol,usdtVol]]}`.
- Kraken (websocket v2): `{"method":"subscribe","params":{"channel":"ohlc","symbol":[...],"interval":1}}`, pushes
  `{"channel":"ohlc","type":"snapshot"|"update","data":[{symbol, open, high, low, close, volume, interval_begin}]}`.

Each also follows the symbols' small book (core.candles.depth): Binance `<sym>@depth10`, Bitget `books15`, Kraken
`book` depth 10.

Bitget and Kraken have no closed flag: a minute is final when a row of a later minute arrives, or (no trade
since: Kraken then sends nothing) when the feed finds it over by a grace period (CloseOnNext.overdue).
Each parser turns one raw message into a list of KlineUpdate / BookTick / Depth / ControlReply; what it cannot use
raises MalformedMessage with a reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from core.candles.candle import MINUTE_MS, ClosedCandle
from core.candles.depth import (
    BITGET_DEPTH_CHANNEL,
    BITGET_SNAPSHOT_CHANNELS,
    DEPTH_LEVELS,
    Depth,
    KrakenBooks,
    binance_partial,
    bitget_books,
    non_negative,
)
from core.candles.source_symbols import from_ws_symbol, ws_symbol
from core.exchanges.spot.binance_klines import (
    WS_BASE,
    BookTick,
    ControlReply,
    KlineUpdate,
    MalformedMessage,
    decode,
    parse_decoded,
)

Message = KlineUpdate | BookTick | Depth | ControlReply


class KlineProtocol(Protocol):
    venue: str
    keepalive: str | None  # a text the venue wants every ~25 s besides websocket pings (Bitget's "ping")

    def url(self, ws_base: str, symbols: list[str]) -> str: ...

    def on_connect(self, symbols: list[str]) -> list[str]:
        """Messages to send right after connecting (the subscriptions not already in the URL)."""
        ...

    def add(self, symbol: str, request_id: int) -> list[str]:
        """Messages that subscribe one more symbol on an open connection."""
        ...

    def parse(self, raw: str | bytes) -> list[Message]: ...

    def overdue(self, before_ms: int) -> list[ClosedCandle]:
        """Forming minutes that ended before `before_ms`, now final (venues without a closed flag)."""
        ...


class BinanceProtocol:
    keepalive: str | None = None

    def __init__(self, venue: str, book_ticker: bool = True):
        """`book_ticker`: follow the symbols' books too (top of book and depth)."""
        self.venue = venue
        self.book_ticker = book_ticker

    def streams(self, symbol: str) -> list[str]:
        lower = symbol.lower()
        books = [f"{lower}@bookTicker", f"{lower}@depth{DEPTH_LEVELS}"] if self.book_ticker else []
        return [f"{lower}@kline_1m", *books]

    def url(self, ws_base: str, symbols: list[str]) -> str:
        return f"{ws_base}/stream?streams={'/'.join(s for symbol in symbols for s in self.streams(symbol))}"

    def on_connect(self, symbols: list[str]) -> list[str]:
        return []

    def add(self, symbol: str, request_id: int) -> list[str]:
        return [json.dumps({"method": "SUBSCRIBE", "params": self.streams(symbol), "id": request_id})]

    def parse(self, raw: str | bytes) -> list[Message]:
        message = decode(raw)
        stream = message.get("stream")
        if isinstance(stream, str) and "@depth" in stream:
            return [binance_partial(stream, message.get("data"), self.venue)]
        return [parse_decoded(message, self.venue)]

    def overdue(self, before_ms: int) -> list[ClosedCandle]:
        return []  # `k.x` closes every minute


class CloseOnNext:
    """Candles of venues without a closed flag: the forming minute of a symbol closes when a later one arrives."""

    def __init__(self) -> None:
        self.forming: dict[str, ClosedCandle] = {}

    def feed(self, candle: ClosedCandle) -> list[KlineUpdate]:
        current = self.forming.get(candle.symbol)
        if current is not None and candle.open_time < current.open_time:
            return []  # an older row (a snapshot's history): the REST backfill owns those
        out = []
        if current is not None and candle.open_time > current.open_time:
            out.append(KlineUpdate(current, True))
        self.forming[candle.symbol] = candle
        out.append(KlineUpdate(candle, False))
        return out

    def overdue(self, before_ms: int) -> list[ClosedCandle]:
        """Close the forming minutes that ended before `before_ms` (no trade since: no later row will come soon).
        A late row of such a minute is then a duplicate the pipeline drops."""
        done = [c for c in self.forming.values() if c.open_time + MINUTE_MS <= before_ms]
        for candle in done:
            del self.forming[candle.symbol]
        return sorted(done, key=lambda c: (c.symbol, c.open_time))


def _number(value: Any, name: str) -> Decimal:
    return non_negative(value, f"field {name!r}")


def _candle(venue: str, symbol: str, open_time: int, ohlcv: Iterable[Any], event_ms: int | None) -> ClosedCandle:
    o, h, low, c, v = (_number(x, n) for x, n in zip(ohlcv, ("open", "high", "low", "close", "volume"), strict=True))
    if open_time <= 0 or open_time % MINUTE_MS:
        raise MalformedMessage(f"candle start {open_time} is not on a minute boundary")
    if min(o, h, low, c) <= 0 or h < max(o, c) or low > min(o, c):
        raise MalformedMessage("candle prices inconsistent (high/low must contain open and close, all positive)")
    return ClosedCandle(venue, symbol, "1m", open_time, o, h, low, c, v, event_ms)


def _object(raw: str | bytes) -> dict[str, Any] | None:
    """The JSON object of a message, None for the plain-text keep-alive answer ("pong")."""
    if raw in ("pong", b"pong"):
        return None
    try:
        message = json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise MalformedMessage("not JSON") from None
    if not isinstance(message, dict):
        raise MalformedMessage("not a JSON object")
    return message


class _ClosedByNextMinute:
    """What the protocols of venues without a closed flag share: subscribe messages per connection (and per
    symbol added), and a fresh CloseOnNext per connection (a new connection starts with a snapshot)."""

    def __init__(self) -> None:
        self.closes = CloseOnNext()

    def _subscribe(self, symbols: list[str], request_id: int) -> list[str]:
        raise NotImplementedError

    def url(self, ws_base: str, symbols: list[str]) -> str:
        return ws_base

    def on_connect(self, symbols: list[str]) -> list[str]:
        self.closes = CloseOnNext()
        return self._subscribe(symbols, 0) if symbols else []

    def add(self, symbol: str, request_id: int) -> list[str]:
        return self._subscribe([symbol], request_id)

    def overdue(self, before_ms: int) -> list[ClosedCandle]:
        return self.closes.overdue(before_ms)


class BitgetProtocol(_ClosedByNextMinute):
    venue = "bitget"
    keepalive: str | None = "ping"  # answered by the text "pong"

    def _subscribe(self, symbols: list[str], request_id: int) -> list[str]:  # Bitget's subscribe takes no request id
        args = [
            {"instType": "SPOT", "channel": channel, "instId": ws_symbol("bitget", s)}
            for s in symbols
            for channel in ("candle1m", BITGET_DEPTH_CHANNEL)
        ]
        return [json.dumps({"op": "subscribe", "args": args})]

    def parse(self, raw: str | bytes) -> list[Message]:
        message = _object(raw)
        if message is None:
            return []
        arg: dict[str, Any] = message["arg"] if isinstance(message.get("arg"), dict) else {}
        symbol = from_ws_symbol(self.venue, str(arg.get("instId", "")))
        if "event" in message:
            if message["event"] == "error":
                return [ControlReply(None, str(message.get("msg") or message.get("code"))[:200], symbol or None)]
            return [ControlReply(None, None, symbol or None)]
        if arg.get("channel") != "candle1m" and arg.get("channel") not in BITGET_SNAPSHOT_CHANNELS:
            raise MalformedMessage(f"unknown channel {str(arg.get('channel'))[:20]!r}")
        if not symbol.isalnum() or len(symbol) > 32:
            raise MalformedMessage("field 'arg.instId' (symbol) missing or invalid")
        if arg["channel"] in BITGET_SNAPSHOT_CHANNELS:
            return [bitget_books(message, symbol, self.venue)]
        rows = message.get("data")
        if not isinstance(rows, list):
            raise MalformedMessage("candle push without a 'data' list")
        event_ms = message.get("ts") if isinstance(message.get("ts"), int) else None
        candles = []
        for row in rows:
            if not isinstance(row, list) or len(row) < 6:
                raise MalformedMessage("candle row is not a list like [ts, o, h, l, c, baseVol, ...]")
            try:
                open_time = int(row[0])
            except (TypeError, ValueError):
                raise MalformedMessage("candle row 'ts' is not an integer") from None
            candles.append(_candle(self.venue, symbol, open_time, row[1:6], event_ms))
        out: list[Message] = []
        for candle in sorted(candles, key=lambda c: c.open_time):
            out.extend(self.closes.feed(candle))
        return out


def _rfc3339_ms(text: Any) -> int:
    """'2023-10-04T16:25:00.000000000Z' -> ms (Kraken sends nanoseconds, which datetime cannot read)."""
    if not isinstance(text, str) or not text.endswith("Z"):
        raise MalformedMessage("field 'interval_begin' missing or not an RFC3339 UTC time")
    seconds, _, fraction = text[:-1].partition(".")
    try:
        moment = datetime.fromisoformat(seconds + "+00:00")
    except ValueError:
        raise MalformedMessage("field 'interval_begin' missing or not an RFC3339 UTC time") from None
    millis = int((fraction + "000")[:3]) if fraction.isdigit() else 0
    return int(moment.timestamp()) * 1000 + millis


class KrakenProtocol(_ClosedByNextMinute):
    venue = "kraken"
    keepalive: str | None = None  # its heartbeat channel comes on its own after any subscription

    def __init__(self) -> None:
        super().__init__()
        self.books = KrakenBooks(self.venue)

    def on_connect(self, symbols: list[str]) -> list[str]:
        self.books = KrakenBooks(self.venue)  # each connection starts with a snapshot of each book
        return super().on_connect(symbols)

    def _subscribe(self, symbols: list[str], request_id: int) -> list[str]:
        spelled = [ws_symbol("kraken", s) for s in symbols]
        channels = [{"channel": "ohlc", "interval": 1}, {"channel": "book", "depth": DEPTH_LEVELS}]
        return [
            json.dumps(
                {"method": "subscribe", "params": {**c, "symbol": spelled, "snapshot": True}, "req_id": request_id}
            )
            for c in channels
        ]

    def parse(self, raw: str | bytes) -> list[Message]:
        message = _object(raw)
        if message is None:
            return []
        if "method" in message:
            if message["method"] in ("pong", "unsubscribe"):
                return []
            result: dict[str, Any] = message["result"] if isinstance(message.get("result"), dict) else {}
            spelled = message.get("symbol") or result.get("symbol") or ""
            symbol = from_ws_symbol(self.venue, str(spelled)) or None
            request_id = message.get("req_id") if isinstance(message.get("req_id"), int) else None
            error = None if message.get("success") else str(message.get("error") or "subscription refused")[:200]
            return [ControlReply(request_id, error, symbol)]
        channel = message.get("channel")
        if channel in ("heartbeat", "status"):
            return []
        if channel == "book":
            return list(self.books.apply(message))
        if channel != "ohlc":
            raise MalformedMessage(f"unknown channel {str(channel)[:20]!r}")
        rows = message.get("data")
        if not isinstance(rows, list):
            raise MalformedMessage("ohlc message without a 'data' list")
        out: list[Message] = []
        for row in rows:
            if not isinstance(row, dict):
                raise MalformedMessage("ohlc row is not an object")
            if row.get("interval") != 1:
                raise MalformedMessage(f"ohlc interval {str(row.get('interval'))[:8]!r}, expected 1")
            symbol = from_ws_symbol(self.venue, str(row.get("symbol", "")))
            if not symbol or len(symbol) > 32:
                raise MalformedMessage("field 'symbol' missing or invalid")
            values = [row.get(k) for k in ("open", "high", "low", "close", "volume")]
            candle = _candle(self.venue, symbol, _rfc3339_ms(row.get("interval_begin")), values, None)
            out.extend(self.closes.feed(candle))
        return out


def protocol_for(venue: str, *, book_ticker: bool = True) -> KlineProtocol:
    """The websocket protocol of a heartbeat venue; the simulator speaks Binance's."""
    if venue in ("sim", "binance"):
        return BinanceProtocol(venue, book_ticker)
    if venue == "bitget":
        return BitgetProtocol()
    if venue == "kraken":
        return KrakenProtocol()
    raise ValueError(f"no kline websocket known for venue {venue!r}; expected one of sim, {', '.join(sorted(WS_BASE))}")
