"""Heartbeat page: live candles per symbol and timeframe, last closes, feed latency and status (SSE)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import redis
from flask import Blueprint, abort, jsonify, render_template, request
from flask_login import login_required

from core.candles.candle import TIMEFRAME_MS
from core.candles.health import feed_status
from core.candles.sources import heartbeat
from core.candles.store import expand_live_event, load_candles
from core.infra.bus import EXTRA_SYMBOLS, get_redis, live_channel
from core.infra.config import TIMEFRAMES
from core.infra.db import get_engine
from webapp import sse

bp = Blueprint("heartbeat", __name__, url_prefix="/heartbeat")
CHART_CANDLES = 300
SSE_KEEPALIVE_S = 15.0


def _venue() -> str:
    return heartbeat().venue  # the first heartbeat source (config.yaml `feeds`)


def _symbols(status: dict) -> list[str]:
    symbols = list(heartbeat().symbols)
    try:
        extra = sorted(get_redis().smembers(EXTRA_SYMBOLS))
    except redis.RedisError:
        extra = []
    for symbol in [*status.get("symbols", {}), *extra]:
        if symbol not in symbols and symbol.isalnum():
            symbols.append(symbol)
    return symbols


def _choice(symbols: list[str]) -> tuple[str, str]:
    symbol = request.args.get("symbol", symbols[0] if symbols else "BTCUSDT").upper()
    timeframe = request.args.get("tf", "1m")
    if not symbol.isalnum() or len(symbol) > 32 or timeframe not in TIMEFRAMES:
        abort(404)
    return symbol, timeframe


def _status() -> dict:
    try:
        return feed_status()
    except redis.RedisError:
        return {"running": False, "connected": False, "symbols": {}, "stale": [], "redis_down": True}


def _close_row(timeframe: str, open_time: int | None, close: Decimal | None, previous: Decimal | None) -> dict:
    """One row of the last closes: its candle's open time (UTC) and close, and the change from the close before."""
    when = None if open_time is None else datetime.fromtimestamp(open_time / 1000, UTC).strftime("%Y-%m-%d %H:%M")
    change = float((close - previous) / previous * 100) if close is not None and previous else None
    return {"tf": timeframe, "close": close, "when": when, "change": change}


def _last_closes(venue: str, symbol: str) -> list[dict]:
    rows = []
    with get_engine().connect() as conn:
        for timeframe in TIMEFRAMES:
            last = load_candles(conn, venue, symbol, timeframe, limit=2, newest=True)
            candle = last[-1] if last else None
            rows.append(
                _close_row(
                    timeframe,
                    candle.open_time if candle else None,
                    candle.close if candle else None,
                    last[0].close if len(last) == 2 else None,
                )
            )
    return rows


@bp.get("/")
@login_required
def index():
    status = _status()
    symbols = _symbols(status)
    symbol, timeframe = _choice(symbols)
    venue = _venue()
    return render_template(
        "heartbeat/index.html",
        venue=venue,
        symbols=symbols,
        symbol=symbol,
        timeframe=timeframe,
        timeframes=TIMEFRAMES,
        status=status,
        closes=_last_closes(venue, symbol),
        tf_ms=TIMEFRAME_MS,
    )


@bp.get("/status")
@login_required
def status_fragment():
    return render_template("heartbeat/_status.html", status=_status(), venue=_venue())


@bp.get("/candles.json")
@login_required
def candles_json():
    symbol, timeframe = _choice([])
    limit = min(max(request.args.get("limit", CHART_CANDLES, type=int), 1), 2000)
    with get_engine().connect() as conn:
        candles = load_candles(conn, _venue(), symbol, timeframe, limit=limit, newest=True)
    return jsonify(
        [
            {
                "time": c.open_time // 1000,
                "open": float(c.open),
                "high": float(c.high),
                "low": float(c.low),
                "close": float(c.close),
                "volume": float(c.volume),
            }
            for c in candles
        ]
    )


@bp.get("/stream")
@login_required
def stream():
    """Server-sent events relayed from the feed's Redis channel for one symbol, for the page's htmx sse
    extension: `candle` and `forming` carry JSON for the chart script; `close-<tf>` (that timeframe's row of
    the last closes) and `book` carry the HTML fragments the page swaps in."""
    symbol, _ = _choice([])
    venue = _venue()
    channel = live_channel(venue, symbol)
    closes = {row["tf"]: row["close"] for row in _last_closes(venue, symbol) if row["close"] is not None}

    def events():
        pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(channel)
            yield sse.RETRY
            quiet_since = time.monotonic()
            while True:
                message = pubsub.get_message(timeout=1.0)
                if message is None:
                    if time.monotonic() - quiet_since > SSE_KEEPALIVE_S:
                        quiet_since = time.monotonic()
                        yield ": keepalive\n\n"  # a closed browser tab shows up as a write error here
                    continue
                quiet_since = time.monotonic()
                for kind, event in expand_live_event(message["data"]):
                    yield from _frames(kind, event, closes)
        except redis.RedisError:
            yield sse.frame("feed-error", '{"error": "redis unavailable"}')
        finally:
            pubsub.close()

    return sse.response(events())


def _frames(kind: str, event: dict, closes: dict[str, Decimal]) -> Iterator[str]:
    """The frames of one feed event; `closes` holds the last close per timeframe this stream has shown."""
    if kind == "book":
        yield sse.frame("book", render_template("heartbeat/_book.html", bid=event["bid"], ask=event["ask"]))
        return
    yield sse.frame(kind, json.dumps(event, separators=(",", ":")))
    if kind == "candle":
        timeframe, close = event["tf"], Decimal(event["c"])
        row = _close_row(timeframe, int(event["t"]), close, closes.get(timeframe))
        closes[timeframe] = close
        yield sse.frame(f"close-{timeframe}", render_template("heartbeat/_close_row.html", row=row, flash=True))
