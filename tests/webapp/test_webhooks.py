# ruff: noqa: F811  (fixtures imported from tests.core.webhooks.fixtures are parameters here)
"""The public receiver and the trader's webhook pages, against the real app, Postgres and Redis."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.infra.bus import STRANGER_COUNTS, STRANGER_SAMPLE, task_sender
from core.infra.config import get_settings
from core.infra.db import new_session, session_scope
from core.models import Order, Webhook, WebhookAlert
from core.webhooks.processing import process_alert
from tests.core.webhooks.fixtures import broker_of, webhook_of  # noqa: F401
from tests.support import csrf_token_from, remember_secret

ALERT = {
    "action": "buy",
    "ticker": "BINANCE:BTCUSDT",
    "contracts": "{{strategy.order.contracts}}",
    "price": "60000",
    "interval": "1",
    "time": "set by _fresh_alert_time",
}


def at(seconds: float = 0) -> str:
    """An alert time `seconds` from now, as TradingView's {{timenow}} writes it."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.fixture(autouse=True)
def _fresh_alert_time():
    """Alerts are refused as stale out of a window around their arrival: each test's alert is a new one."""
    ALERT["time"] = at(-1)


@pytest.fixture(autouse=True)
def _process_here(monkeypatch):
    """The hand-off processes the alert in the test, as an `orders` worker would (workers/webhooks.py)
    but without placing its order: these page-level tests see the recorded order, and a worker of the
    test session never races them for it."""
    monkeypatch.setattr("webapp.webhooks.hand_off", lambda alert_id, *_: process_alert(alert_id, task_sender()))


def post(client, token, body, content_type="application/json", **headers):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    response = client.post(f"/webhooks/tv/{token}", data=data, content_type=content_type, headers=headers)
    response.close()  # hands the alert off, as the WSGI server does once the answer is sent
    return response


def alerts_of(webhook_id: int) -> list[WebhookAlert]:
    with new_session() as session:
        return list(
            session.scalars(select(WebhookAlert).where(WebhookAlert.webhook_id == webhook_id).order_by(WebhookAlert.id))
        )


def orders_of(alert: WebhookAlert) -> list[Order]:
    with new_session() as session:
        return list(session.scalars(select(Order).where(Order.source == "webhook", Order.source_ref == str(alert.id))))


@pytest.fixture()
def trader(make_user, broker_of, webhook_of):
    user, _ = make_user()
    broker_id = broker_of(user)
    webhook_id, token = webhook_of(user, broker_id)
    return user, broker_id, webhook_id, token


def test_tradingview_text_plain_alert_is_stored_answered_202_and_recorded_as_an_order(client, trader, redis_client):
    user, broker_id, webhook_id, token = trader
    response = post(client, token, json.dumps(ALERT), content_type="text/plain; charset=utf-8")
    assert response.status_code == 202
    assert response.get_json()["status"] == "accepted"
    [alert] = alerts_of(webhook_id)
    assert alert.status == "accepted" and alert.symbol == "BTCUSDT" and alert.action == "buy"
    assert json.loads(alert.body) == ALERT and alert.source_ip == "127.0.0.1"
    assert alert.headers["content-type"].startswith("text/plain")
    assert alert.processed_at is not None
    [order] = orders_of(alert)
    assert alert.order_ids == [order.id]
    # The default size (20 USDT) applies: {{strategy.order.contracts}} was not replaced by TradingView.
    assert (order.side, order.type, order.symbol, order.quote_quantity, order.quantity) == (
        "buy",
        "market",
        "BTCUSDT",
        Decimal(20),
        None,
    )
    assert order.broker_id == broker_id and order.user_id == user.id and order.state == "new"


def test_contracts_in_the_alert_override_the_default_size(client, trader):
    _, _, webhook_id, token = trader
    assert post(client, token, {**ALERT, "contracts": "0.5", "action": "sell"}).status_code == 202
    [order] = orders_of(alerts_of(webhook_id)[0])
    assert (order.side, order.quantity, order.quote_quantity) == ("sell", Decimal("0.5"), None)


def test_a_retried_alert_is_stored_as_duplicate_and_never_makes_a_second_order(client, trader):
    _, _, webhook_id, token = trader
    first = post(client, token, ALERT)
    again = post(client, token, json.dumps(ALERT, indent=4))  # a replay, even re-formatted, is the same alert
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.get_json()["status"] == "duplicate"
    original, duplicate = alerts_of(webhook_id)
    assert duplicate.status == "duplicate" and duplicate.duplicate_of_id == original.id
    assert len(orders_of(original)) == 1 and orders_of(duplicate) == []
    # A new alert time is a new alert.
    assert post(client, token, {**ALERT, "time": at()}).status_code == 202


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        ('{"action": "buy", ', "application/json", 400, "malformed JSON"),
        ("[1, 2]", "application/json", 400, "must be a JSON object"),
        ("", "text/plain", 400, "body is empty"),
        (lambda: json.dumps({**ALERT, "action": "hodl"}), "application/json", 422, "unknown action 'hodl'"),
        (json.dumps({"ticker": "BTCUSDT"}), "application/json", 422, "missing 'action'"),
        (json.dumps({"action": "buy"}), "application/json", 422, "missing symbol"),
        (lambda: json.dumps({**ALERT, "ticker": "DOGEUSDT"}), "application/json", 422, "DOGEUSDT is not listed"),
        (
            lambda: json.dumps({**ALERT, "contracts": "0.00001"}),
            "application/json",
            422,
            "below the BTCUSDT minimum quantity",
        ),
        (
            lambda: json.dumps({**ALERT, "contracts": "0.0001", "price": "100"}),
            "application/json",
            422,
            "minimum notional",
        ),
        (lambda: json.dumps({**ALERT, "contracts": "-1"}), "application/json", 422, "must be a positive number"),
        (lambda: json.dumps({**ALERT, "time": "yesterday"}), "application/json", 422, "'time' is not a date"),
        (lambda: json.dumps(ALERT), "application/x-www-form-urlencoded", 415, "content type"),
        (lambda: json.dumps({**ALERT, "pad": "x" * 20_000}), "application/json", 413, "byte limit"),
        (lambda: json.dumps({**ALERT, "contracts": "1e309"}), "application/json", 422, "'contracts' must be at most"),
        (lambda: json.dumps({**ALERT, "contracts": "1e999999999"}), "application/json", 422, "must be at most"),
        (
            lambda: json.dumps(ALERT).replace('"60000"', "1e999999999"),
            "application/json",
            422,
            "'price' must be at most",
        ),
        (lambda: json.dumps({**ALERT, "contracts": "NaN"}), "application/json", 422, "must be a positive number"),
        (lambda: json.dumps({**ALERT, "contracts": "inf"}), "application/json", 422, "must be a positive number"),
        (lambda: json.dumps({**ALERT, "contracts": "-Infinity"}), "application/json", 422, "must be a positive number"),
        (lambda: json.dumps({**ALERT, "contracts": "0"}), "application/json", 422, "must be a positive number"),
        (lambda: json.dumps({**ALERT, "price": "-60000"}), "application/json", 422, "'price' must be a positive"),
        (lambda: json.dumps({**ALERT, "contracts": "9" * 5000}), "application/json", 422, "must be at most"),
        (
            lambda: json.dumps({**ALERT, "contracts": "0." + "0" * 30 + "1"}),
            "application/json",
            422,
            "at most 18 decimal places",
        ),
        (lambda: json.dumps({**ALERT, "sl": "1e309"}), "application/json", 422, "'stop_loss' must be at most"),
        (lambda: json.dumps({**ALERT, "ticker": "BTC" * 40}), "application/json", 422, "is not a market symbol"),
        (lambda: json.dumps({**ALERT, "ticker": "BTC\u0000USDT"}), "application/json", 422, "is not a market symbol"),
        (lambda: json.dumps({**ALERT, "interval": "1" * 100}), "application/json", 422, "'interval' must be"),
        (lambda: json.dumps({**ALERT, "time": at(-121)}), "application/json", 422, "stale alert"),
        (lambda: json.dumps({**ALERT, "time": at(-86_400 * 365 * 100)}), "application/json", 422, "stale alert"),
        (lambda: json.dumps({**ALERT, "time": at(31)}), "application/json", 422, "after it arrived"),
        (lambda: json.dumps({**ALERT, "time": "9999-12-31T23:59:59-23:59"}), "application/json", 422, "stale alert"),
    ],
)
def test_bad_input_is_stored_with_a_clear_reason_and_the_right_status(
    client, trader, body, content_type, status, reason
):
    _, _, webhook_id, token = trader
    body = body() if callable(body) else body
    response = post(client, token, body, content_type=content_type)
    assert response.status_code == status
    assert reason in response.get_json()["reason"]
    [alert] = alerts_of(webhook_id)
    assert (alert.status, alert.http_status) == ("rejected", status)
    assert reason in alert.reason
    assert alert.body_size == len(body.encode())
    assert alert.body == body[:2048] if status == 413 else alert.body == body
    assert orders_of(alert) == []


def test_a_huge_body_over_the_app_limit_is_stored_refused_and_not_read(client, trader):
    _, _, webhook_id, token = trader
    response = post(client, token, b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert response.status_code == 413
    [alert] = alerts_of(webhook_id)
    assert alert.reason.startswith("body of 2097154 bytes") and len(alert.body) <= 2048


def test_unknown_tokens_are_counted_per_address_sampled_and_rate_limited_but_never_stored(client, trader, redis_client):
    _, _, webhook_id, token = trader
    with new_session() as session:
        before = session.scalar(select(func.count()).select_from(WebhookAlert))
    limit = get_settings().file.webhooks.unknown_token_per_minute
    answers = [post(client, f"guess-{i}", ALERT) for i in range(limit + 5)]
    assert all(a.status_code == 404 and a.get_data() == b"" for a in answers[:limit])
    refused = answers[limit:]
    assert {a.status_code for a in refused} == {429}
    assert "unknown tokens" in refused[0].get_json()["reason"]
    with new_session() as session:
        assert session.scalar(select(func.count()).select_from(WebhookAlert)) == before
    assert redis_client.zscore(STRANGER_COUNTS, "127.0.0.1") == limit + 5
    sample = [json.loads(raw) for raw in redis_client.lrange(STRANGER_SAMPLE, 0, -1)]
    assert len(sample) == limit and sample[0]["address"] == "127.0.0.1"
    assert json.loads(sample[0]["body"])["action"] == "buy"
    assert not any("guess-" in raw for raw in redis_client.lrange(STRANGER_SAMPLE, 0, -1))
    # The trader's own alerts from the same address are not affected by the strangers' limit.
    assert post(client, token, ALERT).status_code == 202 and len(alerts_of(webhook_id)) == 1


def test_an_alert_older_than_the_window_is_stored_as_stale_and_the_trader_sees_why(
    client, logged_in, broker_of, webhook_of
):
    webhook_id, token = webhook_of(logged_in, broker_of(logged_in))
    response = post(client, token, {**ALERT, "time": at(-600)})
    assert response.status_code == 422 and response.get_json()["reason"].startswith("stale alert")
    [alert] = alerts_of(webhook_id)
    assert (alert.status, alert.http_status) == ("rejected", 422) and orders_of(alert) == []
    assert "s before it arrived (at most 120 s allowed)" in alert.reason
    html = client.get(f"/webhooks/{webhook_id}/requests").get_data(as_text=True)
    assert "rejected 422" in html and "stale alert: its time" in html


def test_nul_bytes_and_a_forged_proxy_hop_are_stored_readably_never_as_a_database_error(
    client, make_user, broker_of, webhook_of
):
    user, _ = make_user()
    webhook_id, token = webhook_of(user, broker_of(user), trust_proxy=True)
    response = post(client, token, "\x00" + json.dumps(ALERT), **{"X-Forwarded-For": "1.2.3.4, " + "f" * 500})
    assert response.status_code == 400 and "malformed JSON" in response.get_json()["reason"]
    [alert] = alerts_of(webhook_id)
    assert alert.body.startswith("\ufffd") and alert.source_ip == "f" * 64


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    number=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
        st.from_regex(r"-?[0-9]{0,400}(\.[0-9]{0,400})?([eE][-+]?[0-9]{1,12})?", fullmatch=True),
    ),
    field=st.sampled_from(["contracts", "price", "sl", "tp"]),
)
def test_any_number_in_an_alert_is_answered_2xx_or_422_never_a_server_error(
    client, make_user, broker_of, webhook_of, number, field
):
    user, _ = make_user()
    _, token = webhook_of(user, broker_of(user), rate_limit_per_minute=10_000)
    response = post(client, token, json.dumps({**ALERT, "time": at(), field: number}))
    assert response.status_code in (200, 202, 422), response.get_data(as_text=True)
    if response.status_code == 422:
        assert response.get_json()["reason"]


def test_a_webhook_size_beyond_what_an_order_holds_is_refused_on_the_form(client, logged_in, broker_of):
    broker_id = broker_of(logged_in)
    page = client.get("/webhooks/").get_data(as_text=True)
    for size, reason in (
        ("1e999", "default size must be at most"),
        ("NaN", "must be a positive number"),
        ("0.1234567890123456789", "at most 18 decimal places"),
    ):
        response = client.post(
            "/webhooks/",
            data={
                "csrf_token": csrf_token_from(page),
                "name": "big",
                "broker_id": broker_id,
                "size_mode": "quantity",
                "size_value": size,
                "allow_buy": "y",
                "cadence": "",
                "grace_seconds": "15",
                "rate_limit_per_minute": "120",
                "ip_allowlist": "",
            },
        )
        assert response.status_code == 400 and reason in response.get_data(as_text=True)


def test_an_action_the_webhook_does_not_allow_is_refused(client, make_user, broker_of, webhook_of):
    user, _ = make_user()
    webhook_id, token = webhook_of(user, broker_of(user), allowed_actions=("buy",), symbol="ethusdt")
    response = post(client, token, {**ALERT, "action": "sell"})
    assert response.status_code == 422 and "not allowed" in response.get_json()["reason"]
    # A fixed symbol wins over the alert's ticker.
    assert post(client, token, ALERT).status_code == 202
    assert alerts_of(webhook_id)[-1].symbol == "ETHUSDT"


def test_paused_webhook_stores_and_refuses_with_paused(client, trader):
    _, _, webhook_id, token = trader
    with session_scope() as session:
        webhook = session.get(Webhook, webhook_id)
        webhook.paused, webhook.paused_reason = True, "3 expected alerts missed in a row"
    response = post(client, token, ALERT)
    assert response.status_code == 409
    assert response.get_json()["reason"].startswith("paused")
    [alert] = alerts_of(webhook_id)
    assert alert.status == "rejected" and "paused" in alert.reason and orders_of(alert) == []


def test_ip_allow_list_uses_the_peer_address_and_proxy_headers_only_when_trusted(
    client, make_user, broker_of, webhook_of
):
    user, _ = make_user()
    broker_id = broker_of(user)
    _, strict = webhook_of(user, broker_id, ip_allowlist=("52.89.214.238",))
    forged = post(client, strict, ALERT, **{"X-Forwarded-For": "52.89.214.238"})
    assert forged.status_code == 403 and "127.0.0.1" in forged.get_json()["reason"]

    proxied_id, proxied = webhook_of(user, broker_id, ip_allowlist=("52.89.214.0/24",), trust_proxy=True)
    assert post(client, proxied, ALERT, **{"X-Forwarded-For": "52.89.214.238"}).status_code == 202
    # Only the hop our proxy appended counts: a sender cannot prepend an allowed address.
    spoofed = post(client, proxied, {**ALERT, "time": at()}, **{"X-Forwarded-For": "52.89.214.238, 10.1.1.1"})
    assert spoofed.status_code == 403
    assert [a.source_ip for a in alerts_of(proxied_id)] == ["52.89.214.238", "10.1.1.1"]


def test_rate_limit_is_per_token(client, make_user, broker_of, webhook_of):
    user, _ = make_user()
    broker_id = broker_of(user)
    _, limited = webhook_of(user, broker_id, rate_limit_per_minute=2)
    _, other = webhook_of(user, broker_id)
    statuses = [post(client, limited, {**ALERT, "time": at(-i)}).status_code for i in range(3)]
    assert statuses == [202, 202, 429]
    assert post(client, other, ALERT).status_code == 202


def test_without_loaded_markets_the_symbol_is_left_to_the_order_pipeline(client, make_user, broker_of, webhook_of):
    user, _ = make_user()
    _, token = webhook_of(user, broker_of(user, markets=False))
    assert post(client, token, {**ALERT, "ticker": "DOGEUSDT"}).status_code == 202


def test_trader_creates_a_webhook_and_sees_its_url_and_alert_message(client, logged_in, broker_of):
    broker_id = broker_of(logged_in)
    page = client.get("/webhooks/").get_data(as_text=True)
    response = client.post(
        "/webhooks/",
        data={
            "csrf_token": csrf_token_from(page),
            "name": "BTC trend",
            "broker_id": broker_id,
            "symbol": "",
            "size_mode": "quote",
            "size_value": "50",
            "allow_buy": "y",
            "allow_sell": "y",
            "cadence": "5m",
            "grace_seconds": "15",
            "rate_limit_per_minute": "60",
            "tradingview_ips": "y",
            "ip_allowlist": "",
        },
    )
    assert response.status_code == 302
    detail = client.get(response.headers["Location"]).get_data(as_text=True)
    with new_session() as session:
        webhook = session.scalars(select(Webhook).where(Webhook.user_id == logged_in.id)).one()
    from core.webhooks.setup import TRADINGVIEW_IPS, webhook_token

    token = webhook_token(webhook)
    assert f"/webhooks/tv/{token}" in detail
    for placeholder in (
        "{{ticker}}",
        "{{strategy.order.action}}",
        "{{strategy.order.contracts}}",
        "{{close}}",
        "{{interval}}",
        "{{timenow}}",
    ):
        assert placeholder in detail
    assert webhook.allowed_actions == ["buy", "sell"] and webhook.cadence == "5m"
    assert webhook.ip_allowlist == list(TRADINGVIEW_IPS) and webhook.size_value == Decimal(50)
    assert re.search(r'<td class="num">50 quote</td>', client.get("/webhooks/").get_data(as_text=True))  # not 5E+1
    assert webhook.cadence_from is not None and webhook.cadence_from.timestamp() % 300 == 0


def test_bad_settings_are_shown_on_the_form(client, logged_in, broker_of):
    broker_id = broker_of(logged_in)
    page = client.get("/webhooks/").get_data(as_text=True)
    response = client.post(
        "/webhooks/",
        data={
            "csrf_token": csrf_token_from(page),
            "name": "x",
            "broker_id": broker_id,
            "size_mode": "percent",
            "size_value": "150",
            "allow_buy": "y",
            "cadence": "",
            "grace_seconds": "15",
            "rate_limit_per_minute": "60",
            "ip_allowlist": "not-an-ip",
        },
    )
    assert response.status_code == 400
    assert "not an IP address" in response.get_data(as_text=True)


def test_another_traders_webhook_is_not_found(client, logged_in, make_user, broker_of, webhook_of):
    other, _ = make_user()
    webhook_id, _ = webhook_of(other, broker_of(other))
    assert client.get(f"/webhooks/{webhook_id}").status_code == 404
    assert client.get(f"/webhooks/{webhook_id}/reliability").status_code == 404
    token = csrf_token_from(client.get("/webhooks/").get_data(as_text=True))
    assert client.post(f"/webhooks/{webhook_id}/resume", data={"csrf_token": token}).status_code == 404


@pytest.mark.parametrize(
    ("back", "lands_on"),
    [
        ("/webhooks/", "/webhooks/"),
        ("https://evil.example/", None),
        ("//evil.example/webhooks/", None),
        ("/\\evil.example", None),
        ("/\t/evil.example", None),
        ("/webhooks/?page=2", "/webhooks/?page=2"),
    ],
)
def test_pause_goes_back_only_to_a_page_of_this_site(client, logged_in, broker_of, webhook_of, back, lands_on):
    webhook_id, _ = webhook_of(logged_in, broker_of(logged_in))
    token = csrf_token_from(client.get("/webhooks/").get_data(as_text=True))
    response = client.post(f"/webhooks/{webhook_id}/pause", data={"csrf_token": token, "next": back})
    assert response.status_code == 302
    assert response.headers["Location"] == (lands_on or f"/webhooks/{webhook_id}")


def test_reliability_page_lists_every_request_with_its_outcome(client, logged_in, broker_of, webhook_of):
    webhook_id, token = webhook_of(logged_in, broker_of(logged_in))
    post(client, token, ALERT)
    post(client, token, ALERT)
    post(client, token, {**ALERT, "action": "hodl"})
    html = client.get(f"/webhooks/{webhook_id}/reliability").get_data(as_text=True)
    assert "accepted" in html and "duplicate" in html and "unknown action &#39;hodl&#39;" in html
    assert 'id="stat-received">3<' in html


@pytest.mark.browser
def test_browser_trader_creates_webhook_copies_its_url_and_resumes_it_after_misses(page, browser_login, broker_of):
    user, _ = browser_login()
    broker_of(user)
    page.goto("/webhooks/")
    page.fill("#new-webhook input[name=name]", "ETH swing")
    page.fill("#new-webhook input[name=size_value]", "30")
    page.select_option("#new-webhook select[name=cadence]", "1m")
    page.click("#new-webhook button[type=submit]")
    page.wait_for_selector("#webhook-url")
    url = page.inner_text("#webhook-url")
    assert "/webhooks/tv/" in url and "{{timenow}}" in page.inner_text("#alert-message")
    assert "{{plot_0}}" in page.inner_text("#alert-message-exits")
    remember_secret(url.rsplit("/", 1)[-1])

    with session_scope() as session:
        webhook = session.scalars(select(Webhook).where(Webhook.user_id == user.id)).one()
        from core.webhooks.setup import pause_webhook

        pause_webhook(webhook, "3 expected alerts missed in a row")
    page.goto("/webhooks/")
    banner = page.locator(".paused-banner")
    assert "3 expected alerts missed in a row" in banner.inner_text()
    banner.locator("button").click()
    page.wait_for_selector(".flash.success")
    assert page.locator(".paused-banner").count() == 0
    page.click("text=Reliability")
    page.wait_for_selector("#requests")
    assert "No request received yet" in page.inner_text("#requests")


def test_request_log_shows_each_alerts_entry_and_its_protection_with_their_states(
    client, logged_in, broker_of, webhook_of
):
    from core.webhooks.protection import protect_entry
    from tests.core.webhooks.test_processing import sender

    webhook_id, token = webhook_of(logged_in, broker_of(logged_in), size_mode="quantity", size_value=Decimal("0.01"))
    post(client, token, {**ALERT, "sl": "50000", "tp": "70000"})
    [alert] = alerts_of(webhook_id)
    [entry] = orders_of(alert)
    with session_scope() as session:
        from core.infra.db import utcnow
        from core.models import Fill

        order = session.get(Order, entry.id)
        order.state, order.filled_quantity, order.average_price = "filled", Decimal("0.01"), Decimal("60000")
        session.add(
            Fill(
                order_id=order.id,
                user_id=order.user_id,
                broker_id=order.broker_id,
                symbol="BTCUSDT",
                side="buy",
                venue_trade_id=f"t{order.id}",
                price=Decimal("60000"),
                quantity=Decimal("0.01"),
                fee=Decimal(0),
                fee_asset="BTC",
                traded_at=utcnow(),
            )
        )
    oco_id = protect_entry(entry.id, sender())
    html = client.get(f"/webhooks/{webhook_id}/requests").get_data(as_text=True)
    assert f'id="alert-order-{entry.id}"' in html and f'id="alert-order-{oco_id}"' in html
    protection = html.split(f'id="alert-order-{oco_id}"')[1].split("</div>")[0]
    assert "stop-loss + take-profit" in protection and ">new<" in protection
