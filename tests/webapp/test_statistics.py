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

from core.backtest.metric_labels import definition
from core.infra.db import session_scope
from core.models import BacktestRun, Bot
from tests.ledger_support import Ledger
from tests.trading_support import make_trader

D = Decimal
DAY1 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)


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
    return {
        "a": (a, a_password),
        "b": (b, b_password),
        "main": main,
        "other": other,
        "b_broker": b_broker,
        "bot": bot,
    }


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
    assert by_source["Bot · trend-rider"][2:6] == ["9.78", "—", "0.21", "1"]  # money: 2 decimals
    assert by_source["Bot · trend-rider"][6] == "100.00%" and by_source["Bot · trend-rider"][9] == "∞"
    assert by_source["Webhook · tv-breakout"][2] == "-10.19" and by_source["Webhook · tv-breakout"][6] == "0.00%"
    assert by_source["Manual"][3] == "no price"  # open on a venue that does not answer: not a failure
    assert rows(soup, "stat-by-broker")["Second desk"][3] == "no price"
    assert rows(soup, "stat-by-broker")["Main desk"][2] == "-0.41"  # 9.78011 - 10.19
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
        ({"period": "week"}, "unknown period"),
        ({"period": "7d", "start": "2025-03-01"}, "choose a period or dates, not both"),
        ({"side": "long"}, "unknown side"),
        ({"bot": "1 OR 1=1"}, "unknown bot"),
        ({"version": "abc"}, "unknown strategy version"),
        ({"version": "1 OR 1=1"}, "unknown strategy version"),
        ({"version": "-1"}, "unknown strategy version"),
        ({"source": "arbitrage"}, "arbitrage results are not in the fill ledger"),
    ],
)
def test_bad_filters_get_a_clear_error(client, logged_in, args, message):
    response, soup = page(client, **args)
    assert response.status_code == 400
    assert message in soup.find(id="stat-error").get_text()
    csv_response = client.get("/statistics/round-trips.csv", query_string=args)
    assert csv_response.status_code == 400 and message in csv_response.get_data(as_text=True)
    fills_response = client.get("/statistics/fills.csv", query_string=args)
    assert fills_response.status_code == 400 and message in fills_response.get_data(as_text=True)


def test_filters_combine_stay_in_the_url_and_never_reach_another_traders_things(client, login, two_traders):
    login(two_traders["a"][0].username, two_traders["a"][1])
    bot = two_traders["bot"]
    _, soup = page(client, source="bot", venue="sim", period="all")
    assert set(rows(soup, "stat-by-source")) == {"Bot · trend-rider"}
    form = soup.find(id="stat-filters")
    assert form.find("select", attrs={"name": "source"}).find("option", selected=True)["value"] == "bot"
    fills_href = soup.find(id="stat-fills-csv")["href"]
    assert "source=bot" in fills_href and "venue=sim" in fills_href and "period=all" in fills_href
    fills = list(csv.DictReader(io.StringIO(client.get(fills_href).get_data(as_text=True))))
    assert [(f["venue"], f["symbol"], f["side"], f["quantity"], f["fee"], f["fee_asset"]) for f in fills] == [
        ("sim", "BTCUSDT", "buy", "1", "0.001", "BTC"),
        ("sim", "BTCUSDT", "sell", "0.999", "0.10989", "USDT"),
    ]
    assert all(f["order_id"] and f["trade_id"] and f["time"].startswith("2025-03-0") for f in fills)
    _, soup = page(client, symbol="ETHUSDT", broker=two_traders["main"])
    assert set(rows(soup, "stat-by-source")) == {"Webhook · tv-breakout"}
    _, soup = page(client, bot=bot, side="sell")  # the bot never sold first: no short round trip
    assert rows(soup, "stat-by-source")["Bot · trend-rider"][2] == "0.00" and soup.find(id="stat-trips") is None
    _, soup = page(client, bot=bot, side="buy", period="ytd")  # 2025 is not this year: nothing closed in it
    assert soup.find(id="stat-trips") is None

    client.post("/logout", data={"csrf_token": _csrf(soup)})
    login(two_traders["b"][0].username, two_traders["b"][1])
    response, soup = page(client, bot=bot)
    assert response.status_code == 400 and "unknown bot" in soup.find(id="stat-error").get_text()
    assert "trend-rider" not in soup.get_text()


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
    assert cells[3:5] == ["0.01000", "20,000.00"]  # the simulator's BTCUSDT: step 0.00001, tick 0.01
    mark = D(cells[6].replace(",", ""))
    assert mark > 0
    unrealised = (D("0.01") * mark - D("200.2")).quantize(D("0.01"))
    assert cells[7] == f"{unrealised:,.2f}USDT"
    assert rows(soup, "stat-by-symbol")["BTCUSDT · Sim"][3] == f"{unrealised:,.2f}"


def test_the_bots_page_and_the_statistics_page_show_one_position_and_pnl_for_a_bot(client, login, make_user):
    """Issue 19: a buy of 0.001 BTC paying its fee in BTC, then a sell of the ordered 0.001, is one long
    round trip on both pages (no "short 0.000001"), and a later entry is the same open position on both."""
    user, password = make_user()
    ledger = Ledger(user.id)
    desk = ledger.broker("Dust desk")
    bot = ledger.bot(desk, "dusty")
    ledger.trade(desk, "buy", "0.001", "50000", DAY1, fee="0.000001", fee_asset="BTC", source="bot", source_ref=bot)
    ledger.trade(desk, "sell", "0.001", "51000", DAY2, fee="0.051", source="bot", source_ref=bot)
    ledger.trade(desk, "buy", "0.01", "52000", DAY3, fee="0.52", source="bot", source_ref=bot)
    login(user.username, password)

    _, stats = page(client)
    row = rows(stats, "stat-by-source")["Bot · dusty"]
    [position] = stats.find(id="stat-positions").tbody.find_all("tr")
    [trip] = stats.find(id="stat-trips").tbody.find_all("tr")
    assert "short" not in trip.get_text() and "short" not in position.get_text()
    bot_page = BeautifulSoup(client.get(f"/bots/{bot}").get_data(as_text=True), "html.parser")
    realised_tile = bot_page.find(string="Realized P&L").find_parent(class_="tile").find(class_="big")
    cents = D("0.01")
    assert D(row[2]).quantize(cents) == D(realised_tile.get_text().split()[0]) == D("0.90")  # 50.949 − 50 − 0.051
    held = D(bot_page.find(id="bot-position").get_text().split()[0])
    assert held == D(position.find_all("td")[3].get_text(strip=True)) == D("0.01")


def test_the_strategy_version_filter_narrows_to_the_bots_that_ran_it(client, login, make_user):
    (user, password), (other, other_password) = make_user(), make_user()
    ledger = Ledger(user.id)
    desk = ledger.broker("Version desk")
    trend, (v1, v2) = ledger.strategy("trend", versions=2)
    carry, (carry_v1,) = ledger.strategy("carry")
    old_bot, new_bot = ledger.bot(desk, "trend-v1", v1), ledger.bot(desk, "trend-v2", v2)
    ledger.trade(desk, "buy", "1", "100", DAY1, source="bot", source_ref=old_bot)
    ledger.trade(desk, "sell", "1", "104", DAY2, source="bot", source_ref=old_bot)  # +4
    ledger.trade(desk, "buy", "1", "100", DAY1, source="bot", source_ref=new_bot)
    ledger.trade(desk, "sell", "1", "107", DAY3, source="bot", source_ref=new_bot)  # +7
    ledger.trade(desk, "buy", "1", "100", DAY1)
    ledger.trade(desk, "sell", "1", "101", DAY2)  # manual: +1
    _, (foreign_v1,) = Ledger(other.id).strategy("foreign")
    login(user.username, password)

    _, soup = page(client, version=v2)
    assert set(rows(soup, "stat-by-source")) == {"Bot · trend-v2"}
    assert rows(soup, "stat-by-source")["Bot · trend-v2"][2] == "7.00"
    select = soup.find(id="stat-filters").find("select", attrs={"name": "version"})
    options = {o["value"]: o.get_text(strip=True) for o in select.find_all("option") if o["value"]}
    assert options == {str(carry_v1): "carry · v1", str(v1): "trend · v1", str(v2): "trend · v2"}
    assert select.find("option", selected=True)["value"] == str(v2)
    assert f"version={v2}" in soup.find(id="stat-fills-csv")["href"]
    _, soup = page(client, strategy=trend, version=v1)
    assert set(rows(soup, "stat-by-source")) == {"Bot · trend-v1"}
    _, soup = page(client, strategy=trend)
    assert set(rows(soup, "stat-by-source")) == {"Bot · trend-v1", "Bot · trend-v2"}
    _, soup = page(client, version=carry_v1)  # no bot ran it: nothing to show
    assert soup.find(id="stat-empty") is not None
    fills = client.get("/statistics/fills.csv", query_string={"version": v1}).get_data(as_text=True)
    assert [row["source"] for row in csv.DictReader(io.StringIO(fills))] == ["Bot · trend-v1"] * 2

    # A version of another strategy than the one chosen, or another trader's version: refused, nothing shown.
    for args, message in (
        ({"strategy": carry, "version": v1}, "not a version of the chosen strategy"),
        ({"version": foreign_v1}, "unknown strategy version"),
    ):
        response, soup = page(client, **args)
        assert response.status_code == 400 and message in soup.find(id="stat-error").get_text()
        assert soup.find(id="stat-by-source") is None and soup.find(id="stat-totals") is None
        assert client.get("/statistics/fills.csv", query_string=args).status_code == 400

    client.post("/logout", data={"csrf_token": _csrf(soup)})
    login(other.username, other_password)
    response, soup = page(client, version=v1)
    assert response.status_code == 400 and "unknown strategy version" in soup.find(id="stat-error").get_text()
    assert "trend" not in soup.get_text()


def test_incomplete_fills_are_listed_with_their_reason_and_left_out_of_the_totals(client, login, make_user):
    """Two traders with the same complete fills; one also has a fill with no price and one with a fee but
    no fee asset (a venue that answered incompletely): the same numbers, a note, and the table."""
    (user, password), (twin, twin_password) = make_user(), make_user()
    pages = {}
    for trader, secret, with_incomplete in ((user, password, True), (twin, twin_password, False)):
        ledger = Ledger(trader.id)
        desk = ledger.broker("Patchy desk")
        ledger.trade(desk, "buy", "1", "100", DAY1, fee="0.1")
        if with_incomplete:
            ledger.trade(desk, "buy", "2", "0", DAY1 + timedelta(hours=1))
            ledger.trade(desk, "sell", "0.5", "103", DAY2 - timedelta(hours=1), fee="0.05", fee_asset=None)
        ledger.trade(desk, "sell", "1", "105", DAY2, fee="0.105")  # +4.795
        ledger.trade(desk, "buy", "0.3", "90", DAY3, symbol="ETHUSDT")  # stays open: "no price"
        login(trader.username, secret)
        response, soup = page(client)
        assert response.status_code == 200
        pages[with_incomplete] = soup
        client.post("/logout", data={"csrf_token": _csrf(soup)})

    patchy, clean = pages[True], pages[False]
    table = rows(patchy, "stat-incomplete")
    reasons = sorted(
        tr.find(class_="stat-incomplete-reason").get_text(strip=True)
        for tr in patchy.find(id="stat-incomplete").tbody.find_all("tr")
    )
    assert reasons == ["fee without its asset", "no price"] and len(table) == 2
    note = patchy.find(id="stat-incomplete-note").get_text(" ", strip=True)
    assert "2 incomplete fills are left out of these totals" in note
    assert clean.find(id="stat-incomplete") is None and clean.find(id="stat-incomplete-note") is None
    assert rows(patchy, "stat-by-source") == rows(clean, "stat-by-source")
    assert rows(patchy, "stat-by-source")["Manual"][2] == "4.80"
    assert rows(patchy, "stat-by-symbol") == rows(clean, "stat-by-symbol")
    totals = [
        patchy.find(id="stat-totals").get_text(" ", strip=True),
        clean.find(id="stat-totals").get_text(" ", strip=True),
    ]
    assert totals[0] == totals[1] and "Round trips 1" in totals[0]
    assert len(patchy.find(id="stat-trips").tbody.find_all("tr")) == 1


def test_a_new_fill_shows_on_the_next_view_of_the_kept_ledger(client, login, two_traders):
    login(two_traders["a"][0].username, two_traders["a"][1])
    _, soup = page(client, broker=two_traders["other"])
    assert rows(soup, "stat-by-broker")["Second desk"][2] == "0.00"
    _, soup = page(client, broker=two_traders["other"])  # the kept ledger (core/ledger/cache.py) answers
    assert rows(soup, "stat-by-broker")["Second desk"][2] == "0.00"
    Ledger(two_traders["a"][0].id).trade(two_traders["other"], "sell", "0.5", "240", DAY3, fee="0.12")
    _, soup = page(client, broker=two_traders["other"])
    assert rows(soup, "stat-by-broker")["Second desk"][2] == "19.78"  # 0.5 × (240 − 200) − 0.1 − 0.12
    assert soup.find(id="stat-positions") is None or "Second desk" not in soup.find(id="stat-positions").get_text()


def test_admins_see_each_arbitrage_pairs_totals_and_traders_never_see_the_section(client, login, make_user):
    from tests.core.test_arb_history import funded, leg, stored

    pair = f"st-{secrets.token_hex(3)}"
    held = {"vest": "0.01", "paradex": "-0.01"}
    entry = stored(
        pair, "entry", [leg("vest", "BUY", "0.01", "100", "0.001"), leg("paradex", "SELL", "0.01", "101", "0")], held
    )
    funded(entry, pair, "-0.0003")
    stored(
        pair,
        "exit",
        [leg("vest", "SELL", "0.01", "100", "0.001"), leg("paradex", "BUY", "0.01", "100.5", "0")],
        {"vest": "0", "paradex": "0"},
    )
    (trader, trader_password), (operator, operator_password) = make_user(), make_user(is_admin=True)

    login(trader.username, trader_password)
    response, soup = page(client)
    assert response.status_code == 200 and soup.find(id="stat-arbitrage") is None and pair not in soup.get_text()
    client.post("/logout", data={"csrf_token": _csrf(soup)})

    login(operator.username, operator_password)
    response, soup = page(client)
    row = soup.find(id="stat-arbitrage-pairs").find("tr", attrs={"data-pair": pair})
    cells = [td.get_text(" ", strip=True) for td in row.find_all("td")]
    assert cells[1] == "2" and D(row.find(attrs={"data-funding": True})["data-funding"]) == D("-0.0003")
    assert D(row.find(attrs={"data-realised": True})["data-realised"]) == D("0.0027")  # 0.0087 - 0.006
    assert cells[5].endswith("bps") and cells[6].endswith("bps")
    assert row.find("a")["href"] == f"/arbitrage/history/?pair={pair}"


# ---- the live daily curve: charts and metric tables ----------------------------------------------------


def test_the_charts_endpoint_draws_each_days_pnl_of_the_traders_own_view(client, login, two_traders):
    login(two_traders["a"][0].username, two_traders["a"][1])
    response = client.get("/statistics/charts.json", query_string={"end": DAY3.date().isoformat()})
    assert response.status_code == 200
    usdt = response.get_json()["USDT"]
    # Day 1: everything open (no stored price: at cost); day 2 the bot closes +9.78011; day 3 the webhook -10.19.
    assert [D(p["value"]) for p in usdt["pnl"]] == [0, D("9.78011"), D("-0.40989")]
    assert [p["time"] for p in usdt["pnl"]] == [int(datetime(2025, 3, d, tzinfo=UTC).timestamp()) for d in (3, 4, 5)]
    assert [D(p["value"]) for p in usdt["daily"]] == [0, D("9.78011"), D("-10.19")]
    assert [D(p["value"]) for p in usdt["drawdown"]] == [0, 0, D("-10.19")]
    assert usdt["unmarked"] == ["BTCUSDT", "ETHUSDT"]
    # The page embeds the same data and polls this URL, filters included.
    _, soup = page(client, end=DAY3.date().isoformat())
    assert soup.find(id="stat-charts")["data-url"] == "/statistics/charts.json?end=2025-03-05"
    assert soup.find(id="stat-chart-data").get_text().count('"time"') == 9

    # A poll carrying the view's ETag back costs one query until a fill arrives.
    etag = soup.find(id="stat-charts")["data-etag"]
    assert response.headers["ETag"] == f'"{etag}"'
    args = {"end": DAY3.date().isoformat()}
    unchanged = client.get("/statistics/charts.json", query_string=args, headers={"If-None-Match": f'"{etag}"'})
    assert unchanged.status_code == 304 and unchanged.get_data() == b""
    other_view = client.get("/statistics/charts.json", query_string={"end": DAY2.date().isoformat()})
    assert other_view.status_code == 200 and other_view.headers["ETag"] != f'"{etag}"'
    Ledger(two_traders["a"][0].id).trade(two_traders["main"], "buy", "1", "100", DAY3)
    moved = client.get("/statistics/charts.json", query_string=args, headers={"If-None-Match": f'"{etag}"'})
    assert moved.status_code == 200 and moved.headers["ETag"] != f'"{etag}"'

    client.post("/logout", data={"csrf_token": _csrf(soup)})
    login(two_traders["b"][0].username, two_traders["b"][1])
    mine = client.get("/statistics/charts.json", query_string={"end": DAY3.date().isoformat()}).get_json()
    assert [D(p["value"]) for p in mine["USDT"]["pnl"]] == [0, 9, 9]
    refused = client.get("/statistics/charts.json", query_string={"broker": two_traders["main"]})
    assert refused.status_code == 400 and "unknown broker" in refused.get_json()["error"]
    refused = client.get("/statistics/charts.json", query_string={"bot": two_traders["bot"]})
    assert refused.status_code == 400 and "unknown bot" in refused.get_json()["error"]
    assert client.get("/statistics/charts.json", query_string={"start": "2025-13-01"}).status_code == 400


def metric_rows(soup, table_id: str) -> list[dict[str, str]]:
    """Each row of a metric table: its kind (live or backtest) and its cells by metric key."""
    return [
        {
            "kind": " ".join(tr["class"]),
            "title": tr["data-title"],
            **{td["data-metric"]: td.get_text(strip=True) for td in tr.find_all("td", attrs={"data-metric": True})},
            "text": tr.get_text(" ", strip=True),
        }
        for tr in soup.find(id=table_id).tbody.find_all("tr")
    ]


def test_metric_tables_per_strategy_and_per_bot_sit_beside_the_bots_backtest(client, login, make_user):
    (user, password), (other, _) = make_user(), make_user()
    ledger = Ledger(user.id)
    desk = ledger.broker("Metric desk")
    _, (v1,) = ledger.strategy("trend")
    tested, untested = ledger.bot(desk, "tested", v1), ledger.bot(desk, "untested", v1)
    ledger.trade(desk, "buy", "1", "100", DAY1, source="bot", source_ref=tested)
    ledger.trade(desk, "sell", "1", "110", DAY2, source="bot", source_ref=tested)  # +10 on 100: 10 %
    ledger.trade(desk, "buy", "2", "50", DAY1, source="bot", source_ref=untested)
    ledger.trade(desk, "sell", "2", "45", DAY3, source="bot", source_ref=untested)  # -10 on 100: -10 %
    foreign = Ledger(other.id)
    foreign.bot(foreign.broker("Foreign desk"), "foreign-bot")
    with session_scope() as session:
        run = BacktestRun(
            user_id=user.id,
            strategy_version_id=v1,
            kind="single",
            venue="sim",
            symbol="BTCUSDT",
            timeframe="1h",
            start_ms=int((DAY1 - timedelta(hours=500)).timestamp() * 1000),  # 500 1h candles: decides from DAY1
            end_ms=int(DAY3.timestamp() * 1000),
            fee=D("0.001"),
            slippage_bps=D("0.5"),
            cash=D("100"),
            status="done",
            metrics={"total_return_pct": 12.5, "sharpe": 1.25, "profit_factor": None},
            notes={"profit_factor": "infinite (no losing trade)"},
        )
        session.add(run)
        session.flush()
        run_id = run.id
    # The untested bot's backtest would belong to it too (same version, source, timeframe): give it another
    # timeframe so only the tested one has a run.
    with session_scope() as session:
        session.get(Bot, int(untested)).timeframe = "4h"
    login(user.username, password)
    response, soup = page(client, end=DAY3.date().isoformat())
    assert response.status_code == 200

    header = soup.find(id="stat-bot-metrics").thead
    sharpe = header.find("th", attrs={"data-metric": "sharpe"})
    assert sharpe.get_text(strip=True) == "Sharpe ratio" and sharpe["title"] == definition("sharpe") != ""
    assert len(header.find_all("th", attrs={"data-metric": True})) == 10

    bots = {(row["title"], row["kind"]): row for row in metric_rows(soup, "stat-bot-metrics")}
    live = bots[("tested", "stat-live")]
    assert (live["total_return_pct"], live["max_drawdown_pct"], live["win_rate_pct"]) == ("10.00", "0.00", "100.00")
    assert live["profit_factor"] == "n/a" and live["expectancy"] == "10.00"
    assert live["cagr_pct"] == "n/a"  # 3 days: fewer than 30
    # The bot's live metrics over its backtest's period (first decision → last candle) sit above the backtest's.
    period = bots[("tested", "stat-period")]
    assert "Live · 2025-03-03 → 2025-03-05" in period["text"]
    assert (period["total_return_pct"], period["win_rate_pct"]) == ("10.00", "100.00")
    backtest = bots[("tested", "stat-backtest")]
    assert (backtest["total_return_pct"], backtest["sharpe"], backtest["profit_factor"]) == ("12.50", "1.25", "n/a")
    assert f"Backtest #{run_id}" in backtest["text"]
    assert bots[("untested", "stat-live")]["total_return_pct"] == "-10.00"
    assert bots[("untested", "stat-live")]["max_drawdown_pct"] == "-10.00"
    assert "No backtest of this bot's live period yet" in bots[("untested", "stat-backtest")]["text"]
    assert ("untested", "stat-period") not in bots
    form = soup.find(id="stat-bot-metrics").find("form")
    assert form["action"] == f"/bots/{untested}/backtest" and form["method"] == "post"

    (strategy,) = metric_rows(soup, "stat-strategy-metrics")
    assert strategy["title"] == "trend"
    assert strategy["total_return_pct"] == "0.00"  # +10 and -10 on 200 at work at once
    assert strategy["win_rate_pct"] == "50.00" and strategy["profit_factor"] == "1.00"
    assert "foreign-bot" not in soup.get_text()


def test_a_view_without_fills_says_so_and_draws_nothing(client, logged_in):
    response, soup = page(client)
    assert response.status_code == 200 and "No fills in this view" in soup.find(id="stat-empty").get_text()
    assert soup.find(id="stat-charts") is None and soup.find(id="stat-bot-metrics") is None
    assert client.get("/statistics/charts.json").get_json() == {}
    assert client.get("/statistics/charts.json", query_string={"period": "7d"}).get_json() == {}
