"""Heartbeat page: candles from Postgres, live events over SSE, feed status from the feeds heartbeat."""

import json
import secrets
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests
from playwright.sync_api import expect

from core.candles.candle import ClosedCandle
from core.candles.store import candle_event, store_candles
from core.infra.bus import EXTRA_SYMBOLS, live_channel
from core.infra.db import get_engine
from core.infra.liveness import write_liveness
from tests.support import csrf_token_from

T0 = 1_735_689_600_000
MINUTE = 60_000


def candles(symbol: str, count: int, timeframe: str = "1m", start: int = T0) -> list[ClosedCandle]:
    span = {"1m": MINUTE, "3m": 3 * MINUTE}[timeframe]
    return [
        ClosedCandle(
            "sim",
            symbol,
            timeframe,
            start + i * span,
            Decimal(100 + i),
            Decimal(102 + i),
            Decimal(99 + i),
            Decimal("101.5") + i,
            Decimal(3),
        )
        for i in range(count)
    ]


@pytest.fixture()
def symbol(infra):
    name = "H" + secrets.token_hex(3).upper()
    store_candles(get_engine(), candles(name, 5) + candles(name, 2, "3m"))
    return name


def test_pages_need_a_login(client, infra):
    for path in ("/heartbeat/", "/heartbeat/candles.json?symbol=BTCUSDT", "/heartbeat/stream?symbol=BTCUSDT"):
        assert client.get(path).status_code == 302


def test_page_shows_symbols_last_closes_and_a_missing_feed(client, logged_in, symbol, redis_client):
    redis_client.sadd(EXTRA_SYMBOLS, symbol)
    html = client.get(f"/heartbeat/?symbol={symbol}&tf=3m").get_data(as_text=True)
    assert f"?symbol={symbol}&amp;tf=3m" in html  # its tab, from the symbols bots use
    assert 'data-timeframe="3m"' in html and 'data-tf-ms="180000"' in html
    assert "105.5" in html and "102.5" in html  # last 1m close, last 3m close
    assert "2025-01-01 00:04" in html
    assert "feeds process not running" in html


def test_candles_json_is_ordered_and_limited(client, logged_in, symbol):
    rows = client.get(f"/heartbeat/candles.json?symbol={symbol}&tf=1m&limit=3").get_json()
    assert [r["time"] for r in rows] == [(T0 + i * MINUTE) // 1000 for i in (2, 3, 4)]
    assert rows[-1]["close"] == 105.5
    assert client.get(f"/heartbeat/candles.json?symbol={symbol}&tf=2m").status_code == 404
    assert client.get("/heartbeat/candles.json?symbol=BTC-USDT").status_code == 404


def test_status_shows_connection_latency_and_stale_symbols(client, logged_in, redis_client):
    now = time.time()
    write_liveness(
        "feeds",
        {
            "venue": "sim",
            "connected": True,
            "reconnects": 2,
            "messages": 10,
            "stream_latency_ms": {"p50": 1.5, "p99": 7.25, "max": 9},
            "stored_latency_ms": {"p50": 3.0, "p99": 12.0, "max": 15},
            "symbols": {"BTCUSDT": {"last_message_ts": now - 1}, "ETHUSDT": {"last_message_ts": now - 300}},
        },
        redis_client,
    )
    html = client.get("/heartbeat/status").get_data(as_text=True)
    assert "connected" in html and "2 reconnects" in html
    assert "1.5 ms p50 · 7.25 ms p99" in html and "12.0 ms p99" in html
    assert html.index("ETHUSDT") < html.index("stale")


def login_over_http(base: str, make_user) -> requests.Session:
    user, password = make_user()
    session = requests.Session()
    token = csrf_token_from(session.get(f"{base}/login").text)
    session.post(f"{base}/login", data={"username": user.username, "password": password, "csrf_token": token})
    return session


def _frames(lines) -> Iterator[tuple[str, str]]:
    """(event, data) per server-sent event frame; multi-line data joined with newlines as a browser does."""
    event, data = "message", []
    for line in lines:
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
        elif not line and data:
            yield event, "\n".join(data)
            event, data = "message", []


def test_sse_relays_the_feed_events_of_one_symbol(live_server, make_user, redis_client, symbol):
    session = login_over_http(live_server, make_user)
    frames: list[tuple[str, str]] = []
    with session.get(f"{live_server}/heartbeat/stream?symbol={symbol}", stream=True, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")

        def publish():
            deadline = time.monotonic() + 5
            while redis_client.pubsub_numsub(live_channel("sim", symbol))[0][1] == 0:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            redis_client.publish(live_channel("sim", "OTHERUSDT"), candle_event(candles("OTHERUSDT", 1)[0]))
            redis_client.publish(live_channel("sim", symbol), candle_event(candles(symbol, 6)[5]))
            redis_client.publish(
                live_channel("sim", symbol),
                json.dumps({"type": "book", "venue": "sim", "symbol": symbol, "bid": "106.4", "ask": "106.6"}),
            )

        threading.Thread(target=publish, daemon=True).start()
        for frame in _frames(response.iter_lines(decode_unicode=True)):
            frames.append(frame)
            if frame[0] == "book":
                break
    assert [event for event, _ in frames] == ["candle", "close-1m", "book"]
    candle = json.loads(frames[0][1])  # JSON for the chart script
    assert (candle["symbol"], candle["tf"], candle["c"]) == (symbol, "1m", "106.5")
    # HTML for the htmx sse extension: the 1m row of the last closes, its change from the stored 105.5 close
    row = frames[1][1]
    assert row.startswith('<tr data-tf="1m" sse-swap="close-1m" hx-swap="outerHTML" class="flash-row">')
    assert '"num close">106.5<' in row and "2025-01-01 00:05" in row and '"num change buy">0.95<' in row
    assert '<span id="book-bid" class="num buy">106.4</span>' in frames[2][1]


@pytest.mark.browser
def test_chart_draws_stored_candles_then_moves_with_live_closes(page, browser_login, symbol, redis_client):
    from core.candles.pipeline import CandlePipeline
    from core.infra.config import TIMEFRAMES

    browser_login()
    page.goto(f"/heartbeat/?symbol={symbol}&tf=1m")
    page.wait_for_selector("#chart[data-loaded]")
    assert page.get_attribute("#chart", "data-bars") == "5"
    assert page.locator("#chart canvas").count() > 0
    page.wait_for_selector("#live-state.ok")
    minute = T0 + 5 * MINUTE
    closed = json.dumps(
        {
            "e": "kline",
            "E": minute + MINUTE,
            "s": symbol,
            "k": {
                "t": minute,
                "T": minute + MINUTE - 1,
                "s": symbol,
                "i": "1m",
                "o": "105.5",
                "h": "110",
                "l": "105",
                "c": "108.25",
                "v": "4",
                "x": True,
            },
        }
    )
    book = json.dumps({"u": 7, "s": symbol, "b": "108.2", "B": "1", "a": "108.3", "A": "2"})
    pipeline = CandlePipeline("sim", client=redis_client, engine=get_engine(), timeframes=TIMEFRAMES)
    pipeline.process_messages([closed, book])
    expect(page.locator("#chart")).to_have_attribute("data-bars", "6")
    assert page.get_attribute("#chart", "data-last-close") == "108.25"
    # the server-rendered fragments the htmx sse extension swapped in
    row = page.locator('#last-closes tr[data-tf="1m"]')
    expect(row.locator(".close")).to_have_text("108.25")
    expect(row.locator(".open-time")).to_have_text("2025-01-01 00:05")
    expect(row.locator(".change")).to_have_text("2.61")  # from the stored 105.5 close
    expect(page.locator("#book-bid")).to_have_text("108.2")
    expect(page.locator("#book-ask")).to_have_text("108.3")
    assert pipeline.flush()
