"""Statistics page over a real Postgres ledger: P&L per source, broker and symbol; filters; the CSV;
another trader's numbers never show; open positions marked at a real simulator's price or "no price"."""

# ruff: noqa: F811  (the simulator fixture imported from tests.core.bots.fixtures is a parameter here)
from __future__ import annotations

import csv
import io
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from bs4 import BeautifulSoup

from core import brokers
from core.infra.db import session_scope
from core.models import Bot, Fill, Order, Webhook, WebhookAlert
from tests.support import free_port, remember_secret
from tests.trading_support import make_trader

D = Decimal
DAY1 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)


class Ledger:
    """Writes a trader's broker connections, orders and fills straight into the ledger tables."""

    def __init__(self, user_id: int):
        self.user_id = user_id

    def broker(self, label: str, base_url: str | None = None) -> int:
        api_key, secret = remember_secret(f"k{secrets.token_hex(8)}"), remember_secret(f"s{secrets.token_hex(12)}")
        with session_scope() as session:
            broker = brokers.create_connection(
                session,
                self.user_id,
                brokers.ConnectionInput(
                    venue="sim",
                    label=label,
                    api_key=api_key,
                    api_secret=secret,
                    base_url=base_url or f"http://127.0.0.1:{free_port()}",
                ),
            )  # nothing listens: no price
            return broker.id

    def bot(self, broker_id: int, name: str) -> str:
        with session_scope() as session:
            bot = Bot(
                user_id=self.user_id, name=name, broker_id=broker_id, venue="sim", symbol="BTCUSDT", timeframe="1h"
            )
            session.add(bot)
            session.flush()
            return bot.source_ref

    def webhook_alert(self, broker_id: int, name: str) -> str:
        with session_scope() as session:
            webhook = Webhook(
                user_id=self.user_id,
                broker_id=broker_id,
                name=name,
                token_hash=secrets.token_hex(32),
                token_enc="x",
                size_value=D("100"),
            )
            session.add(webhook)
            session.flush()
            alert = WebhookAlert(webhook_id=webhook.id, status="accepted", http_status=200)
            session.add(alert)
            session.flush()
            return str(alert.id)

    def trade(
        self,
        broker_id: int,
        side: str,
        quantity: str,
        price: str,
        at: datetime,
        *,
        fee: str = "0",
        fee_asset: str = "USDT",
        source: str = "manual",
        source_ref: str | None = None,
        symbol: str = "BTCUSDT",
    ) -> None:
        with session_scope() as session:
            order = Order(
                user_id=self.user_id,
                broker_id=broker_id,
                symbol=symbol,
                side=side,
                type="market",
                quantity=D(quantity),
                state="filled",
                filled_quantity=D(quantity),
                source=source,
                source_ref=source_ref,
            )
            session.add(order)
            session.flush()
            session.add(
                Fill(
                    order_id=order.id,
                    user_id=self.user_id,
                    broker_id=broker_id,
                    symbol=symbol,
                    side=side,
                    venue_trade_id=secrets.token_hex(8),
                    price=D(price),
                    quantity=D(quantity),
                    fee=D(fee),
                    fee_asset=fee_asset,
                    traded_at=at,
                )
            )


@pytest.fixture()
def two_traders(make_user, login, client):
    """Trader A: a bot, a webhook and manual trades on two brokers. Trader B: one manual round trip."""
    (a, a_password), (b, b_password) = make_user(), make_user()
    ledger_a, ledger_b = Ledger(a.id), Ledger(b.id)
    main, other = ledger_a.broker("Main desk"), ledger_a.broker("Second desk")
    bot = ledger_a.bot(main, "trend-rider")
    alert = ledger_a.webhook_alert(main, "tv-breakout")
    ledger_a.trade(main, "buy", "1", "100", DAY1, fee="0.001", fee_asset="BTC", source="bot", source_ref=bot)
    ledger_a.trade(main, "sell", "0.999", "110", DAY2, fee="0.10989", source="bot", source_ref=bot)  # +9.78011
    ledger_a.trade(main, "buy", "2", "50", DAY1, fee="0.1", source="webhook", source_ref=alert, symbol="ETHUSDT")
    ledger_a.trade(
        main, "sell", "2", "45", DAY3, fee="0.09", source="webhook", source_ref=alert, symbol="ETHUSDT"
    )  # -10.19
    ledger_a.trade(other, "buy", "0.5", "200", DAY2, fee="0.1")  # stays open; the venue does not answer
    b_broker = ledger_b.broker("B desk")
    ledger_b.trade(b_broker, "buy", "3", "10", DAY1)
    ledger_b.trade(b_broker, "sell", "3", "13", DAY2)  # +9
    return {"a": (a, a_password), "b": (b, b_password), "main": main, "other": other, "b_broker": b_broker}


def page(client, **args):
    response = client.get("/statistics/", query_string=args)
    return response, BeautifulSoup(response.get_data(as_text=True), "html.parser")


def rows(soup, table_id: str) -> dict[str, list[str]]:
    table = soup.find(id=table_id)
    return (
        {
            tr.find_all("td")[0].get_text(strip=True): [td.get_text(" ", strip=True) for td in tr.find_all("td")]
            for tr in table.tbody.find_all("tr")
        }
        if table
        else {}
    )


def test_a_trader_sees_pnl_per_source_broker_and_symbol_and_never_another_traders(client, login, two_traders):
    login(two_traders["a"][0].username, two_traders["a"][1])
    response, soup = page(client)
    assert response.status_code == 200
    by_source = rows(soup, "stat-by-source")
    # source row: title, quote, realised, unrealised, fees, trips, win rate, avg win, avg loss, profit factor
    assert by_source["Bot · trend-rider"][2:6] == ["9.78", "—", "0.20989", "1"]
    assert by_source["Bot · trend-rider"][6] == "100.0%" and by_source["Bot · trend-rider"][9] == "∞"
    assert by_source["Webhook · tv-breakout"][2] == "-10.19" and by_source["Webhook · tv-breakout"][6] == "0.0%"
    assert by_source["Manual"][3] == "no price"  # open on a venue that does not answer: not a failure
    assert rows(soup, "stat-by-broker")["Second desk"][3] == "no price"
    assert rows(soup, "stat-by-broker")["Main desk"][2] == "-0.40989"  # 9.78011 - 10.19
    by_symbol = rows(soup, "stat-by-symbol")
    assert set(by_symbol) == {"BTCUSDT · Main desk", "ETHUSDT · Main desk", "BTCUSDT · Second desk"}
    positions = soup.find(id="stat-positions").tbody.find_all("tr")
    assert len(positions) == 1 and "no price" in positions[0].get_text()
    assert "B desk" not in soup.get_text()
    assert len(soup.find(id="stat-trips").tbody.find_all("tr")) == 2

    client.post("/logout", data={"csrf_token": _csrf(soup)})
    login(two_traders["b"][0].username, two_traders["b"][1])
    response, soup = page(client)
    text = soup.get_text()
    for foreign in ("trend-rider", "tv-breakout", "Main desk", "Second desk", "ETHUSDT", "-10.19", "9.78"):
        assert foreign not in text
    assert rows(soup, "stat-by-source")["Manual"][2] == "9.00"
    # A's broker in B's filter is refused like any unknown broker, not shown.
    response, soup = page(client, broker=two_traders["main"])
    assert response.status_code == 400 and "unknown broker" in soup.find(id="stat-error").get_text()
    assert "trend-rider" not in soup.get_text()


def _csrf(soup) -> str:
    return soup.find("input", attrs={"name": "csrf_token"})["value"]


def test_the_date_range_and_broker_filters_narrow_the_numbers(client, login, two_traders):
    login(two_traders["a"][0].username, two_traders["a"][1])
    # Day 2 only: the bot's exit counts against its day-1 entry; the webhook's day-3 exit does not.
    _, soup = page(client, start=DAY2.date().isoformat(), end=DAY2.date().isoformat())
    by_source = rows(soup, "stat-by-source")
    assert by_source["Bot · trend-rider"][2] == "9.78"
    assert by_source["Webhook · tv-breakout"][2] == "0.00" and by_source["Webhook · tv-breakout"][5] == "0"
    assert soup.find(id="stat-filters").find("input", attrs={"name": "start"})["value"] == "2025-03-04"
    # Up to day 1: the webhook's ETH is still open at the range's end.
    _, soup = page(client, end=DAY1.date().isoformat())
    assert "ETHUSDT" in soup.find(id="stat-positions").get_text()
    # One broker: only its rows.
    _, soup = page(client, broker=two_traders["other"])
    assert set(rows(soup, "stat-by-broker")) == {"Second desk"}
    assert soup.find("option", selected=True).get_text() == "Second desk"
    # A range with nothing in it says so.
    _, soup = page(client, start="2024-01-01", end="2024-01-31")
    assert soup.find(id="stat-empty") is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"start": "03/03/2025"}, "From must be a date"),
        ({"end": "tomorrow"}, "To must be a date"),
        ({"start": "2025-03-04", "end": "2025-03-03"}, "ends before it starts"),
        ({"broker": "abc"}, "unknown broker"),
        ({"broker": "999999999"}, "unknown broker"),
    ],
)
def test_bad_filters_get_a_clear_error(client, logged_in, args, message):
    response, soup = page(client, **args)
    assert response.status_code == 400
    assert message in soup.find(id="stat-error").get_text()
    csv_response = client.get("/statistics/round-trips.csv", query_string=args)
    assert csv_response.status_code == 400 and message in csv_response.get_data(as_text=True)


def test_round_trips_export_as_csv_with_the_page_filters(client, login, two_traders):
    login(two_traders["a"][0].username, two_traders["a"][1])
    _, soup = page(client, broker=two_traders["main"])
    href = soup.find(id="stat-csv")["href"]
    response = client.get(href)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    trips = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(t["source"], t["symbol"], t["pnl"], t["fees"]) for t in trips] == [
        ("Bot · trend-rider", "BTCUSDT", "9.78011", "0.20989"),
        ("Webhook · tv-breakout", "ETHUSDT", "-10.19", "0.19"),
    ]
    only_day2 = client.get("/statistics/round-trips.csv", query_string={"end": DAY2.date().isoformat()})
    assert [row["source"] for row in csv.DictReader(io.StringIO(only_day2.get_data(as_text=True)))] == [
        "Bot · trend-rider"
    ]

    client.post("/logout", data={"csrf_token": _csrf(soup)})
    login(two_traders["b"][0].username, two_traders["b"][1])
    theirs = list(csv.DictReader(io.StringIO(client.get("/statistics/round-trips.csv").get_data(as_text=True))))
    assert [(t["broker"], t["pnl"]) for t in theirs] == [("B desk", "9")]


def test_an_open_position_is_marked_at_the_venues_last_price(client, login, make_user, sim):
    user, password = make_user()
    trader = make_trader(lambda: (user, password), sim)
    Ledger(trader.user_id).trade(trader.broker_id, "buy", "0.01", "20000", DAY1, fee="0.2")
    login(user.username, password)
    _, soup = page(client)
    [row] = soup.find(id="stat-positions").tbody.find_all("tr")
    cells = [td.get_text(strip=True) for td in row.find_all("td")]
    mark = D(cells[6])
    assert mark > 0
    unrealised = (D("0.01") * mark - D("200.2")).quantize(D("0.01"))
    assert cells[7] == f"{unrealised:,.2f}USDT"
    assert rows(soup, "stat-by-symbol")["BTCUSDT · Sim"][3] == f"{unrealised:,.2f}"
