"""The Trading page's depth fragment reads the small book the feeds stored (never the venue): a fresh book as a
ladder with running totals on the symbol's tick and step, "stale" past its freshness, "no book yet" when none is
stored; a symbol the connection does not list, or another trader's connection, is a 404 that reads no book."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from core.candles.depth import DEPTH_FRESH_S, Depth
from core.infra.bus import depth_key
from core.infra.db import session_scope
from core.models import User
from tests.trading_support import make_trader

pytestmark = pytest.mark.slow
D = Decimal
BOOK = Depth(
    "sim",
    "BTCUSDT",
    ((D("46190.44000000"), D("0.12345678")), (D("46190.43"), D("1.5"))),
    ((D("46190.45"), D("0.5")), (D("46190.50"), D("2"))),
)


@pytest.fixture()
def trader(client, make_user, login, sim):
    user, password = make_user()
    trader = make_trader(lambda: (user, password), sim)
    with session_scope() as session:
        username = session.get(User, trader.user_id).username
    assert login(username, password).status_code == 302
    return trader


def _depth(client, broker_id: int, symbol: str):
    return client.get(f"/trading/market/depth?broker={broker_id}&symbol={symbol}", headers={"HX-Request": "true"})


def test_a_fresh_book_is_a_ladder_with_running_totals_by_tick_and_step(client, trader, redis_client):
    redis_client.set(depth_key("sim", "BTCUSDT"), BOOK.body(int(time.time() * 1000)), ex=60)
    page = _depth(client, trader.broker_id, "btcusdt")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="depth-ladder"' in html and "Stale" not in html
    # prices on the tick (0.01), sizes and totals on the step (rounded down), asks highest first, then bids
    assert html.index("46,190.50") < html.index("46,190.45") < html.index("Spread 0.01") < html.index("46,190.44")
    assert "0.12345" in html and "1.62345" in html  # 0.12345678 + 1.5 on a 0.00001 step
    assert "--depth:100.0%" in html  # the deeper side's last total fills its bar
    assert "46190.44000000" not in html


def test_a_book_older_than_its_freshness_is_shown_as_stale(client, trader, redis_client):
    at = int((time.time() - DEPTH_FRESH_S - 20) * 1000)
    redis_client.set(depth_key("sim", "BTCUSDT"), BOOK.body(at), ex=60)
    html = _depth(client, trader.broker_id, "BTCUSDT").get_data(as_text=True)
    assert 'id="depth-stale"' in html and "Stale: the last book arrived 2" in html
    assert 'class="depth-ladder stale"' in html


def test_no_stored_book_says_so(client, trader, redis_client):
    redis_client.delete(depth_key("sim", "BTCUSDT"))
    page = _depth(client, trader.broker_id, "BTCUSDT")
    assert page.status_code == 200 and "No book yet for BTCUSDT" in page.get_data(as_text=True)
    redis_client.set(depth_key("sim", "BTCUSDT"), "{not json", ex=60)  # whatever is there, the page stands
    assert "No book yet for BTCUSDT" in _depth(client, trader.broker_id, "BTCUSDT").get_data(as_text=True)


@pytest.mark.parametrize("symbol", ["NOPEUSDT", "BTCUSDT%2A", "%2A", "", "BTC%3AUSDT", "B" * 300])
def test_a_symbol_the_connection_does_not_list_is_a_clear_404(client, trader, redis_client, symbol):
    page = _depth(client, trader.broker_id, symbol)
    assert page.status_code == 404
    assert "lists no such market" in page.get_data(as_text=True)
    for summary in ("summary", "positions", "overlay.json"):  # the card's other parts check the same way
        assert client.get(f"/trading/market/{summary}?broker={trader.broker_id}&symbol={symbol}").status_code == 404


def test_another_traders_connection_is_a_404(client, trader, make_user, sim):
    other = make_trader(make_user, sim)
    assert _depth(client, other.broker_id, "BTCUSDT").status_code == 404
    assert _depth(client, 0, "BTCUSDT").status_code == 404
