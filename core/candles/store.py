"""Where closed candles go: Postgres (unique per venue/symbol/timeframe/open time) and Redis.

Redis names (built in core/infra/bus.py): candle_stream (closed candles, bounded length), live_channel
(pub/sub: closed and forming candles, book ticks), book_key (last top of book), EXTRA_SYMBOLS (set:
symbols bots use, besides config.yaml's).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import cast

import redis
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine

from core.candles.candle import ClosedCandle
from core.infra.bus import candle_stream, live_channel
from core.models import Candle
from core.models.candles import CANDLE_SOURCES

STREAM_MAXLEN = 5000
INSERT_CHUNK = 5000

_INSERT = """
INSERT INTO candles (venue, symbol, timeframe, open_time, open, high, low, close, volume, source)
SELECT *, CAST(:source AS varchar) FROM unnest(
    CAST(:venue AS varchar[]), CAST(:symbol AS varchar[]), CAST(:tf AS varchar[]), CAST(:t AS bigint[]),
    CAST(:o AS numeric[]), CAST(:h AS numeric[]), CAST(:l AS numeric[]), CAST(:c AS numeric[]),
    CAST(:v AS numeric[]))
"""
_KEEP_STORED = text(_INSERT + "ON CONFLICT DO NOTHING")
# The live feed is the reference: it corrects a candle an import or a download stored, never its own.
_FEED_UPSERT = text(
    _INSERT
    + """ON CONFLICT (venue, symbol, timeframe, open_time) DO UPDATE
SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    volume = EXCLUDED.volume, source = EXCLUDED.source
WHERE candles.source <> 'feed'"""
)


def _array(values) -> str:
    """A Postgres array literal: one text parameter per column is much cheaper to send than a typed list."""
    return "{" + ",".join(map(str, values)) + "}"


def insert_candles(conn: Connection, candles: Sequence[ClosedCandle], source: str) -> int:
    """Store candles from `source` (see CANDLE_SOURCES); returns how many rows were written.

    The feed's candles replace those of an import or a download; any other source only adds candles
    not stored yet."""
    if source not in CANDLE_SOURCES:
        raise ValueError(f"unknown candle source {source!r}")
    statement = _FEED_UPSERT if source == "feed" else _KEEP_STORED
    added = 0
    for start in range(0, len(candles), INSERT_CHUNK):
        chunk = candles[start : start + INSERT_CHUNK]
        result = conn.execute(
            statement,
            {
                "venue": [c.venue for c in chunk],
                "symbol": [c.symbol for c in chunk],
                "tf": [c.timeframe for c in chunk],
                "t": _array(c.open_time for c in chunk),
                "o": _array(c.open for c in chunk),
                "h": _array(c.high for c in chunk),
                "l": _array(c.low for c in chunk),
                "c": _array(c.close for c in chunk),
                "v": _array(c.volume for c in chunk),
                "source": source,
            },
        )
        added += result.rowcount
    return added


def store_candles(engine: Engine, candles: Sequence[ClosedCandle]) -> int:
    """The live feed's write (see insert_candles)."""
    if not candles:
        return 0
    with engine.begin() as conn:
        return insert_candles(conn, candles, "feed")


def load_candles(
    conn: Connection,
    venue: str,
    symbol: str,
    timeframe: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int | None = None,
    newest: bool = False,
) -> list[ClosedCandle]:
    """Stored candles in open-time order; `newest` with `limit` gives the last `limit` ones."""
    query = select(Candle).where(Candle.venue == venue, Candle.symbol == symbol, Candle.timeframe == timeframe)
    if start_ms is not None:
        query = query.where(Candle.open_time >= start_ms)
    if end_ms is not None:
        query = query.where(Candle.open_time <= end_ms)
    query = query.order_by(Candle.open_time.desc() if newest else Candle.open_time).limit(limit)
    rows = [
        ClosedCandle(r.venue, r.symbol, r.timeframe, r.open_time, r.open, r.high, r.low, r.close, r.volume)
        for r in conn.execute(query)
    ]
    return sorted(rows, key=lambda c: c.open_time) if newest else rows


def last_open_time(
    conn: Connection, venue: str, symbol: str, timeframe: str, *, start_ms: int | None = None, end_ms: int | None = None
) -> int | None:
    query = select(func.max(Candle.open_time)).where(
        Candle.venue == venue, Candle.symbol == symbol, Candle.timeframe == timeframe
    )
    if start_ms is not None:
        query = query.where(Candle.open_time >= start_ms)
    if end_ms is not None:
        query = query.where(Candle.open_time <= end_ms)
    return conn.execute(query).scalar()


def coverage(conn: Connection) -> list[dict]:
    """What is stored: one row per (venue, symbol, timeframe) with count and first/last open time."""
    query = (
        select(
            Candle.venue,
            Candle.symbol,
            Candle.timeframe,
            func.count(),
            func.min(Candle.open_time),
            func.max(Candle.open_time),
        )
        .group_by(Candle.venue, Candle.symbol, Candle.timeframe)
        .order_by(Candle.venue, Candle.symbol, Candle.timeframe)
    )
    return [
        {"venue": v, "symbol": s, "timeframe": tf, "count": n, "first": first, "last": last}
        for v, s, tf, n, first, last in conn.execute(query)
    ]


def candle_event(candle: ClosedCandle, kind: str = "candle", **extra) -> str:
    return json.dumps(
        {
            "type": kind,
            "venue": candle.venue,
            "symbol": candle.symbol,
            "tf": candle.timeframe,
            **candle.fields(),
            **extra,
        },
        separators=(",", ":"),
    )


# One server-side call appends a whole batch: the client packs 2 arguments per candle instead of a
# full XADD (about 20) — at thousands of candles a second, packing commands was the bottleneck.
_APPEND = """
local rejected = 0
for i, key in ipairs(KEYS) do
  local f = {}
  for part in string.gmatch(ARGV[i + 1], "[^,]+") do f[#f + 1] = part end
  local args = {"XADD", key, "MAXLEN", "~", ARGV[1], f[1] .. "-0", "t", f[1], "o", f[2], "h", f[3], "l", f[4],
                "c", f[5], "v", f[6]}
  if f[7] then args[#args + 1] = "E"; args[#args + 1] = f[7] end
  local reply = redis.pcall(unpack(args))
  if type(reply) == "table" and reply.err then rejected = rejected + 1 end
end
return rejected
"""
_append_scripts: dict[int, object] = {}


def _append_script(client: redis.Redis):
    script = _append_scripts.get(id(client))
    if script is None:
        script = _append_scripts[id(client)] = client.register_script(_APPEND)
    return script


def queue_publish(
    pipe: redis.client.Pipeline, client: redis.Redis, candles: Sequence[ClosedCandle], maxlen: int = STREAM_MAXLEN
) -> None:
    """Queue, on a Redis pipeline, the stream appends of a batch (one script call; its reply is the number of
    candles a stream refused as not newer than its last) and one live event per symbol."""
    if not candles:
        return
    keys = [candle_stream(c.venue, c.symbol, c.timeframe) for c in candles]
    rows = [
        ",".join(
            (str(c.open_time), str(c.open), str(c.high), str(c.low), str(c.close), str(c.volume))
            + ((str(c.event_ms),) if c.event_ms is not None else ())
        )
        for c in candles
    ]
    _append_script(client)(keys=keys, args=[maxlen, *rows], client=pipe)
    by_symbol: dict[tuple[str, str], list[dict]] = {}
    for candle in candles:
        by_symbol.setdefault((candle.venue, candle.symbol), []).append({"tf": candle.timeframe, **candle.fields()})
    for (venue, symbol), items in by_symbol.items():
        pipe.publish(
            live_channel(venue, symbol),
            json.dumps({"type": "candles", "venue": venue, "symbol": symbol, "items": items}, separators=(",", ":")),
        )


def expand_live_event(data: str) -> list[tuple[str, dict]]:
    """A live-channel message as (kind, event) pairs: a batch of closed candles becomes one "candle" each."""
    event = json.loads(data)
    if event.get("type") == "candles":
        return [
            ("candle", {"type": "candle", "venue": event["venue"], "symbol": event["symbol"], **item})
            for item in event["items"]
        ]
    return [(event.get("type", "message"), event)]


def _stream_entries(reply: object) -> list[tuple[str, dict[str, str]]]:
    """XRANGE/XREVRANGE entries of a client that decodes responses (core.infra.bus.get_redis)."""
    return cast("list[tuple[str, dict[str, str]]]", reply or [])


def last_streamed_open_time(client: redis.Redis, venue: str, symbol: str, timeframe: str) -> int | None:
    entries = _stream_entries(client.xrevrange(candle_stream(venue, symbol, timeframe), count=1))
    return int(entries[0][0].split("-")[0]) if entries else None


def read_stream(client: redis.Redis, venue: str, symbol: str, timeframe: str, count: int = 100) -> list[ClosedCandle]:
    entries = _stream_entries(client.xrevrange(candle_stream(venue, symbol, timeframe), count=count))
    return [ClosedCandle.from_fields(venue, symbol, timeframe, fields) for _, fields in reversed(entries)]
