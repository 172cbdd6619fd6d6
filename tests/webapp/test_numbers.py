"""One rule for numbers on every page: money in 2 decimals with thousands separators, prices on the symbol's
tick, quantities on its step (rounded down, dust as zero), changes in percent with their sign."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select

from core.infra.db import session_scope
from core.models import Order, SymbolRule
from tests.ledger_support import Ledger
from webapp.numbers import MISSING, money, pct, places, price, qty, share

D = Decimal


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("46694.4852208"), "46,694.49"),
        (D("8969.75278611"), "8,969.75"),
        (D("-1234567.005"), "-1,234,567.00"),
        (D("-0.001"), "0.00"),  # never "-0.00"
        (1234567, "1,234,567.00"),
        (None, MISSING),
    ],
)
def test_money_has_two_decimals_and_thousands_separators(value, text):
    assert money(value) == text


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        (D("1234.5678"), "USDT", "1,234.57"),
        (D("1234.5678"), "eur", "1,234.57"),
        (D("0.000123456"), "BTC", "0.00012346"),  # in hundredths it would read 0.00
        (D("-0.5"), "ETH", "-0.50000000"),
    ],
)
def test_money_in_a_crypto_currency_keeps_eight_decimals(value, currency, text):
    assert money(value, currency) == text


@pytest.mark.parametrize(
    ("value", "tick", "text"),
    [
        (D("46190.44000000"), D("0.01"), "46,190.44"),
        (D("0.123456"), D("0.0001000"), "0.1235"),
        (D("5E+1"), D("0.10"), "50.0"),
        (D("51000"), D("10"), "51,000"),
        (D("46190.4400"), None, "46,190.44"),  # no rules stored: the value's own digits
        (None, D("0.01"), MISSING),
    ],
)
def test_prices_follow_the_tick(value, tick, text):
    assert price(value, tick) == text


@pytest.mark.parametrize(
    ("value", "step", "text"),
    [
        (D("0.12345678"), D("0.001"), "0.123"),  # rounded down: never more than held
        (D("0.0000004"), D("0.00001"), "0"),  # dust below the step
        (D("5E+1"), D("1"), "50"),
        (D("-0.0199"), D("0.01"), "-0.01"),
        (D("1500.5"), None, "1,500.5"),
    ],
)
def test_quantities_follow_the_step(value, step, text):
    assert qty(value, step) == text


def test_percentages_carry_their_sign_and_increments_their_places():
    assert [pct(D("1.2345")), pct(D("-2.5")), pct(D("0.001")), pct(None)] == ["+1.23%", "-2.50%", "0.00%", MISSING]
    assert [share(D("0.5")), share(1), share(D("0.123456")), share(None)] == ["50.00%", "100.00%", "12.35%", MISSING]
    assert [places(D("0.00001000")), places(D("1")), places(D("10")), places(None), places(D(0))] == [
        5,
        0,
        0,
        None,
        None,
    ]


# ---- the pages that follow the rule: order history, trades, an order, Statistics -----------------------

PRICE, AVERAGE, QUANTITY = D("46190.44123456"), D("46190.43999999"), D("0.12345678")


@pytest.fixture()
def desk(logged_in):
    """A broker whose BTCUSDT has tick 0.01 and step 0.00001, and a filled order priced in 8 decimals on it."""
    ledger = Ledger(logged_in.id)
    broker_id = ledger.broker("Desk")
    with session_scope() as session:
        rules = {"tick_size": "0.01", "step_size": "0.00001", "min_qty": "0.00001", "min_notional": "5"}
        session.add(SymbolRule(broker_id=broker_id, symbol="BTCUSDT", base="BTC", quote="USDT", rules=rules))
    ledger.trade(broker_id, "buy", str(QUANTITY), str(AVERAGE), datetime(2026, 3, 1, tzinfo=UTC))
    with session_scope() as session:
        order = session.scalar(select(Order).where(Order.broker_id == broker_id))
        order.type, order.price, order.average_price = "limit", PRICE, AVERAGE
        return order.id


def _cells(client, path: str, table_id: str) -> list[str]:
    soup = BeautifulSoup(client.get(path).get_data(as_text=True), "html.parser")
    return [td.get_text(" ", strip=True) for td in soup.find(id=table_id).tbody.find("tr").find_all("td")]


def test_order_history_trades_and_the_order_show_prices_on_the_tick_and_quantities_on_the_step(client, desk):
    # history: #, created, broker, symbol, side, type, qty, price, filled, avg, state
    assert _cells(client, "/trading/history", "history")[6:10] == ["0.12345", "46,190.44", "0.12345", "46,190.44"]
    # trades: time, broker, symbol, side, qty, price, fee
    assert _cells(client, "/trading/trades", "trades")[4:6] == ["0.12345", "46,190.44"]
    order_page = client.get(f"/trading/orders/{desk}").get_data(as_text=True)
    assert "0.12345 at 46,190.44" in order_page and "46190.4" not in order_page


def test_statistics_show_money_with_separators_and_prices_on_the_tick(client, desk):
    # open positions: broker, symbol, source, quantity, entry, cost, mark, unrealised
    cells = _cells(client, "/statistics/", "stat-positions")
    cost = QUANTITY * AVERAGE  # 5702.52...: no fee
    assert cells[3:6] == ["0.12345", "46,190.44", f"{cost:,.2f}"]
    assert "," in cells[5]
