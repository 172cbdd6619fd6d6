"""Who stored a candle: the live feed's candles are the reference, an import or a download never rewrites
one, and the feed corrects what they stored (real Postgres, and the simulator as the venue)."""

from __future__ import annotations

import secrets
import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.candles.candle import ClosedCandle
from core.candles.loading import ImportRefused, download_candles, import_candles_text
from core.candles.store import insert_candles, store_candles
from core.exchanges.spot.registry import make_exchange
from core.infra.db import get_engine
from core.models import Candle

T0 = 1_735_689_600_000
MINUTE = 60_000


def candle(sym: str, i: int, close: str) -> ClosedCandle:
    price = Decimal(close)
    return ClosedCandle("binance", sym, "1m", T0 + i * MINUTE, price, price + 1, price - 1, price, Decimal(2))


def kept(sym: str, venue: str = "binance") -> list[tuple[int, Decimal, str]]:
    with get_engine().connect() as conn:
        rows = conn.execute(
            select(Candle.open_time, Candle.close, Candle.source)
            .where(Candle.venue == venue, Candle.symbol == sym)
            .order_by(Candle.open_time)
        )
        return [tuple(row) for row in rows]


def csv_of(*candles: ClosedCandle) -> str:
    return "\n".join(
        ["open_time,open,high,low,close,volume"]
        + [f"{c.open_time},{c.open},{c.high},{c.low},{c.close},{c.volume}" for c in candles]
    )


def test_the_feed_corrects_imported_candles_and_an_import_never_rewrites_the_feeds(infra):
    sym = "S" + secrets.token_hex(4).upper()
    import_candles_text(
        csv_of(candle(sym, 0, "100"), candle(sym, 1, "101")), venue="binance", symbol=sym, timeframe="1m"
    )
    assert store_candles(get_engine(), [candle(sym, 1, "105"), candle(sym, 2, "106")]) == 2
    assert kept(sym) == [
        (T0, Decimal(100), "import"),
        (T0 + MINUTE, Decimal(105), "feed"),
        (T0 + 2 * MINUTE, Decimal(106), "feed"),
    ]
    with pytest.raises(ImportRefused, match="conflicts with the stored candle"):
        import_candles_text(csv_of(candle(sym, 2, "50")), venue="binance", symbol=sym, timeframe="1m")
    # Even written directly (as a download does), another source only adds what is missing.
    with get_engine().begin() as conn:
        assert insert_candles(conn, [candle(sym, 2, "1"), candle(sym, 3, "107")], "download") == 1
    # The feed does not rewrite its own candles either (a re-sent close is the same candle).
    assert store_candles(get_engine(), [candle(sym, 2, "999"), candle(sym, 3, "108")]) == 1
    assert kept(sym)[2:] == [(T0 + 2 * MINUTE, Decimal(106), "feed"), (T0 + 3 * MINUTE, Decimal(108), "feed")]


def test_an_unknown_source_is_a_programming_error(infra):
    with get_engine().begin() as conn, pytest.raises(ValueError, match="unknown candle source"):
        insert_candles(conn, [candle("XUSDT", 0, "1")], "upload")


def test_a_download_stores_only_closed_candles_never_the_venues_forming_one(sim, infra, redis_client):
    sym = "ETHUSDT"
    now = int(time.time() * 1000)
    report = download_candles(
        "sim",
        sym,
        "1m",
        now - 30 * MINUTE,
        now + 5 * MINUTE,
        exchange=make_exchange("sim", api_key="", api_secret="", base_url=sim.url),
    )
    rows = [row for row in kept(sym, venue="sim") if row[0] >= now - 30 * MINUTE]
    forming = now - now % MINUTE
    assert report.rows == len(rows) > 0 and all(source == "download" for _, _, source in rows)
    assert rows[-1][0] + MINUTE <= int(time.time() * 1000)
    assert rows[-1][0] < forming
