"""Heartbeat page: live candles per symbol and timeframe, last closes, feed latency and status (SSE)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import redis
from flask import Blueprint, Response, abort, jsonify, render_template, request, stream_with_context
from flask_login import login_required

from core.bus import EXTRA_SYMBOLS, get_redis, live_channel
from core.candles.candle import TIMEFRAME_MS
from core.candles.health import feed_status
from core.candles.store import expand_live_event, load_candles
from core.config import TIMEFRAMES, get_settings
from core.db import get_engine

bp = Blueprint("heartbeat", __name__, url_prefix="/heartbeat")
CHART_CANDLES = 300
SSE_KEEPALIVE_S = 15.0


def _venue() -> str:
    return get_settings().file.feeds.venue


def _symbols(status: dict) -> list[str]:
    symbols = list(get_settings().file.feeds.symbols)
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


def _last_closes(venue: str, symbol: str) -> list[dict]:
    rows = []
    with get_engine().connect() as conn:
        for timeframe in TIMEFRAMES:
            last = load_candles(conn, venue, symbol, timeframe, limit=2, newest=True)
            candle = last[-1] if last else None
            change = None
            if len(last) == 2 and last[0].close:
                change = float((last[1].close - last[0].close) / last[0].close * 100)
            when = datetime.fromtimestamp(candle.open_time / 1000, UTC).strftime("%Y-%m-%d %H:%M") if candle else None
            rows.append({"tf": timeframe, "candle": candle, "change": change, "when": when})
    return rows


@bp.get("/")
@login_required
def index():
    status = _status()
    symbols = _symbols(status)
    symbol, timeframe = _choice(symbols)
    venue = _venue()
    return render_template("heartbeat/index.html", venue=venue, symbols=symbols, symbol=symbol,
                           timeframe=timeframe, timeframes=TIMEFRAMES, status=status,
                           closes=_last_closes(venue, symbol), tf_ms=TIMEFRAME_MS)


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
    return jsonify([{"time": c.open_time // 1000, "open": float(c.open), "high": float(c.high),
                     "low": float(c.low), "close": float(c.close), "volume": float(c.volume)} for c in candles])


@bp.get("/stream")
@login_required
def stream():
    """Server-sent events relayed from the feed's Redis channel for one symbol."""
    symbol, _ = _choice([])
    channel = live_channel(_venue(), symbol)

    def events():
        pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(channel)
            yield "retry: 2000\n\n"
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
                    yield f"event: {kind}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
        except redis.RedisError:
            yield "event: feed-error\ndata: {\"error\": \"redis unavailable\"}\n\n"
        finally:
            pubsub.close()

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
