"""Alert parsing: TradingView's bodies, placeholders left unreplaced, idempotency keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.webhooks.payload import (
    ACTIONS,
    MAX_AMOUNT,
    AlertRejected,
    alert_message_template,
    check_content_type,
    check_freshness,
    decode_body,
    idempotency_key,
    normalize_symbol,
    parse_alert,
    parse_time,
)

RECEIVED = datetime(2026, 11, 21, 10, 0, 30, tzinfo=UTC)


def test_the_ready_message_is_json_once_tradingview_fills_its_placeholders():
    message = alert_message_template(None)
    filled = (
        message.replace("{{strategy.order.action}}", "sell")
        .replace("{{ticker}}", "ETHUSDT")
        .replace("{{strategy.order.contracts}}", "0.25")
        .replace("{{close}}", "3000.5")
        .replace("{{interval}}", "5")
        .replace("{{timenow}}", "2026-11-21T10:05:00Z")
    )
    alert = parse_alert(decode_body(filled.encode()), fixed_symbol=None, allowed_actions=list(ACTIONS))
    assert (alert.action, alert.symbol, alert.quantity, alert.price) == (
        "sell",
        "ETHUSDT",
        Decimal("0.25"),
        Decimal("3000.5"),
    )
    assert alert.time == datetime(2026, 11, 21, 10, 5, tzinfo=UTC)
    assert "{{ticker}}" not in alert_message_template("BTCUSDT")


def test_the_message_with_exits_carries_the_strategys_stop_loss_and_take_profit_plots():
    message = alert_message_template("BTCUSDT", with_exits=True)
    filled = (
        message.replace("{{strategy.order.action}}", "buy")
        .replace("{{strategy.order.contracts}}", "0.5")
        .replace("{{close}}", "100")
        .replace("{{interval}}", "5")
        .replace("{{timenow}}", "2026-11-21T10:05:00Z")
        .replace("{{plot_0}}", "95.5")
        .replace("{{plot_1}}", "110")
    )
    alert = parse_alert(decode_body(filled.encode()), fixed_symbol="BTCUSDT", allowed_actions=list(ACTIONS))
    assert (alert.stop_loss, alert.take_profit) == (Decimal("95.5"), Decimal("110"))


def test_numbers_stay_exact_decimals():
    alert = parse_alert(
        decode_body(b'{"action": "buy", "ticker": "BTCUSDT", "contracts": 0.1}'),
        fixed_symbol=None,
        allowed_actions=list(ACTIONS),
    )
    assert alert.quantity == Decimal("0.1")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("BINANCE:BTCUSDT", "BTCUSDT"), ("BTCUSDT.P", "BTCUSDT"), ("btc/usdt", "BTCUSDT"), ("ETH-USDT", "ETHUSDT")],
)
def test_tradingview_tickers_map_onto_venue_symbols(raw, expected):
    assert normalize_symbol(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-21T10:00:00Z", datetime(2026, 11, 21, 10, tzinfo=UTC)),
        ("1795255200", datetime.fromtimestamp(1795255200, UTC)),
        ("1795255200000", datetime.fromtimestamp(1795255200, UTC)),
    ],
)
def test_alert_times(raw, expected):
    assert parse_time(raw) == expected


@pytest.mark.parametrize("content_type", ["application/json", "text/plain; charset=utf-8", "Application/JSON"])
def test_accepted_content_types(content_type):
    check_content_type(content_type)  # raises AlertRejected (415) when refused
    with pytest.raises(AlertRejected):  # while a neighbouring type is refused: the check discriminates
        check_content_type(content_type.lower().replace("json", "xml").replace("text/plain", "text/html"))


@pytest.mark.parametrize("content_type", [None, "", "application/x-www-form-urlencoded", "text/html"])
def test_refused_content_types(content_type):
    with pytest.raises(AlertRejected) as caught:
        check_content_type(content_type)
    assert caught.value.http_status == 415


def test_unreplaced_action_placeholder_is_a_clear_rejection():
    with pytest.raises(AlertRejected, match="missing 'action'"):
        parse_alert(
            {"action": "{{strategy.order.action}}", "ticker": "BTCUSDT"},
            fixed_symbol=None,
            allowed_actions=list(ACTIONS),
        )


def test_invalid_utf8_is_rejected():
    with pytest.raises(AlertRejected, match="UTF-8"):
        decode_body(b"\xff\xfe{}")


@given(
    body=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=5), other=st.text(min_size=1, max_size=8)
)
def test_idempotency_key_depends_on_webhook_time_and_content_only(body, other):
    moment = datetime(2026, 11, 21, 10, tzinfo=UTC)
    key = idempotency_key(1, body, moment, RECEIVED)
    reordered = dict(reversed(list(body.items())))
    assert idempotency_key(1, reordered, moment, datetime(2030, 1, 1, tzinfo=UTC)) == key
    assert idempotency_key(2, body, moment, RECEIVED) != key
    assert idempotency_key(1, body, datetime(2026, 11, 21, 10, 1, tzinfo=UTC), RECEIVED) != key
    assert idempotency_key(1, {**body, "\x00extra": other}, moment, RECEIVED) != key


def test_without_alert_time_identical_alerts_in_the_same_minute_are_one():
    body = json.loads('{"action": "buy"}')
    same_minute = datetime(2026, 11, 21, 10, 0, 59, tzinfo=UTC)
    next_minute = datetime(2026, 11, 21, 10, 1, 0, tzinfo=UTC)
    assert idempotency_key(1, body, None, RECEIVED) == idempotency_key(1, body, None, same_minute)
    assert idempotency_key(1, body, None, RECEIVED) != idempotency_key(1, body, None, next_minute)


def _exits(**fields):
    return parse_alert({"ticker": "BTCUSDT", **fields}, fixed_symbol=None, allowed_actions=list(ACTIONS))


def test_stop_loss_and_take_profit_are_read_under_their_short_names_too():
    alert = _exits(action="buy", price="100", sl="90", tp="120")
    assert (alert.stop_loss, alert.take_profit) == (Decimal("90"), Decimal("120"))
    short = _exits(action="sell", price="100", stop_loss="110", take_profit="80")
    assert (short.stop_loss, short.take_profit) == (Decimal("110"), Decimal("80"))


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"action": "buy", "price": "100", "sl": "105"}, "stop-loss 105 must be below the price 100"),
        ({"action": "buy", "price": "100", "tp": "95"}, "take-profit 95 must be above the price 100"),
        ({"action": "buy", "sl": "120", "tp": "110"}, "stop-loss 120 must be below its take-profit 110"),
        ({"action": "sell", "price": "100", "sl": "90"}, "stop-loss 90 must be above the price 100"),
        ({"action": "sell", "price": "100", "tp": "101"}, "take-profit 101 must be below the price 100"),
        ({"action": "buy", "sl": "-5"}, "'stop_loss' must be a positive number"),
        ({"action": "buy", "tp": "lots"}, "'take_profit' must be a number"),
    ],
)
def test_exit_prices_on_the_wrong_side_are_refused_with_the_reason(fields, says):
    with pytest.raises(AlertRejected) as refused:
        _exits(**fields)
    assert refused.value.http_status == 422 and says in refused.value.reason


def test_a_close_ignores_exit_prices_its_message_template_carries():
    alert = _exits(action="close", price="100", sl="105", tp="95")
    assert alert.action == "close" and alert.stop_loss == Decimal("105")


@given(
    price=st.decimals(min_value=1, max_value=10**6, places=2),
    below=st.decimals(min_value="0.01", max_value="0.99", places=2),
    above=st.decimals(min_value="1.01", max_value=3, places=2),
)
def test_a_long_with_its_stop_below_and_target_above_the_price_is_always_accepted(price, below, above):
    alert = _exits(action="buy", price=str(price), sl=str(price * below), tp=str(price * above))
    assert alert.stop_loss < alert.price < alert.take_profit


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("1e309", "must be at most 1,000,000,000,000,000"),
        ("1e999999999", "must be at most"),
        ("NaN", "must be a positive number"),
        ("sNaN", "must be a positive number"),
        ("inf", "must be a positive number"),
        ("-Infinity", "must be a positive number"),
        ("0", "must be a positive number"),
        ("-0.5", "must be a positive number"),
        ("1" * 5000, "must be at most"),
        ("1e-19", "must have at most 18 decimal places"),
        ("0." + "0" * 4000 + "1", "must have at most 18 decimal places"),
    ],
)
def test_quantities_and_prices_beyond_what_an_order_holds_are_refused(raw, says):
    for name, field in (("contracts", "contracts"), ("price", "close"), ("stop_loss", "sl")):
        with pytest.raises(AlertRejected) as refused:
            _exits(action="buy", **{field: raw})
        assert refused.value.http_status == 422
        assert refused.value.reason.startswith(f"'{name}' {says}"), refused.value.reason


@pytest.mark.parametrize("raw", ["1000000000000000", "1.500000000000000000000", "0.000000000000000001", "2E+3"])
def test_quantities_at_the_bounds_are_kept_exactly(raw):
    assert _exits(action="buy", contracts=raw).quantity == Decimal(raw)


@given(
    number=st.one_of(
        st.floats().map(repr),
        st.decimals().map(str),
        st.text(max_size=30),
        st.from_regex(r"-?[0-9]{0,60}(\.[0-9]{0,60})?([eE][-+]?[0-9]{1,12})?", fullmatch=True),
    )
)
def test_any_number_text_is_a_bounded_decimal_or_a_422(number):
    try:
        alert = _exits(action="buy", contracts=number)
    except AlertRejected as refused:
        assert refused.http_status == 422 and refused.reason.startswith("'contracts' ")
        return
    assert alert.quantity is None or Decimal(0) < alert.quantity <= MAX_AMOUNT


@pytest.mark.parametrize(
    ("alert_s", "fresh"), [(-120, True), (-121, False), (30, True), (31, False), (0, True), (-(10**9), False)]
)
def test_alert_times_outside_the_freshness_window_are_stale(alert_s, fresh):
    moment = RECEIVED + timedelta(seconds=alert_s)
    if fresh:
        check_freshness(moment, RECEIVED, max_age_s=120, max_ahead_s=30)
        return
    with pytest.raises(AlertRejected) as refused:
        check_freshness(moment, RECEIVED, max_age_s=120, max_ahead_s=30)
    assert refused.value.http_status == 422 and refused.value.reason.startswith("stale alert: its time")
    check_freshness(None, RECEIVED, max_age_s=120, max_ahead_s=30)  # no time in the message: nothing to judge


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"ticker": "BTC" * 20}, "is not a market symbol"),
        ({"ticker": "BTC\x00USDT"}, "is not a market symbol"),
        ({"ticker": "BTCÜSDT"}, "is not a market symbol"),
        ({"interval": "5; DROP"}, "'interval' must be"),
    ],
)
def test_symbols_and_intervals_that_no_market_has_are_refused(fields, says):
    with pytest.raises(AlertRejected, match=says):
        parse_alert({"action": "buy", "ticker": "BTCUSDT", **fields}, fixed_symbol=None, allowed_actions=list(ACTIONS))


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"trailing_stop_pct": "0"}, "'trailing_stop_pct' must be a positive number"),
        ({"trailing_stop_pct": "abc"}, "'trailing_stop_pct' must be a number"),
        ({"trailing_stop_pct": "25"}, "'trailing_stop_pct' must be between 0.1 and 20"),
        ({"trailing_stop_pct": "2", "sl": "90"}, "either 'stop_loss' or 'trailing_stop_pct'"),
        ({"take_profit_ladder": "50%"}, "'take_profit_ladder': take_profit_ladder must be a list"),
        ({"take_profit_ladder": [{"pct": "2", "size_pct": "100"}]}, "2 to 10 rungs, not 1"),
        ({"take_profit_ladder": [{"pct": "2", "size_pct": "50"}] * 11}, "2 to 10 rungs, not 11"),
        ({"take_profit_ladder": [{"pct": "2", "size_pct": "50"}, {"pct": "4", "size_pct": "40"}]}, "add up to 90 %"),
        ({"take_profit_ladder": [{"pct": "2", "size_pct": "50"}, "x"]}, "rung 2 must be an object"),
        ({"take_profit_ladder": [{"pct": "2", "size_pct": "50"}, {"size_pct": "50"}]}, 'exactly one of "price"'),
        ({"take_profit_ladder": [{"pct": "2", "price": "3", "size_pct": "50"}, {}]}, 'exactly one of "price"'),
        ({"take_profit_ladder": [{"pct": "2"}, {"pct": "4", "size_pct": "50"}]}, 'rung 1 needs its "size_pct"'),
        ({"take_profit_ladder": [{"pct": "-2", "size_pct": "50"}, {"pct": "4", "size_pct": "50"}]}, "positive"),
        ({"take_profit_ladder": [{"pct": True, "size_pct": "50"}, {"pct": "4", "size_pct": "50"}]}, "a number"),
        ({"take_profit_ladder": [{"pct": "2", "size_pct": "50", "evil": 1}, {}]}, "unknown fields: evil"),
        (
            {"take_profit_ladder": [{"price": "1e30", "size_pct": "50"}, {"pct": "4", "size_pct": "50"}]},
            "rung 1 price must be at most",
        ),
        (
            {"price": "100", "take_profit_ladder": [{"price": "99", "size_pct": "50"}, {"pct": "4", "size_pct": "50"}]},
            "rung 1 at 99 must be above the price 100",
        ),
        (
            {"tp": "120", "take_profit_ladder": [{"pct": "2", "size_pct": "50"}, {"pct": "4", "size_pct": "50"}]},
            "either 'take_profit' or 'take_profit_ladder'",
        ),
        (
            {
                "trailing_stop_pct": "2",
                "take_profit_ladder": [{"pct": "2", "size_pct": "50"}, {"pct": "4", "size_pct": "50"}],
            },
            "give the ladder a 'stop_loss'",
        ),
    ],
)
def test_malformed_trailing_stops_and_ladders_are_refused_with_the_reason(fields, says):
    with pytest.raises(AlertRejected) as refused:
        parse_alert({"action": "buy", "symbol": "BTCUSDT", **fields}, fixed_symbol=None, allowed_actions=list(ACTIONS))
    assert refused.value.http_status == 422 and says in refused.value.reason


def test_a_trailing_stop_and_a_ladder_are_kept_as_checked_decimals_in_the_stored_payload():
    body = decode_body(
        b'{"action": "buy", "symbol": "BTCUSDT", "sl": 90, "trailing_stop_pct": null,'
        b' "take_profit_ladder": [{"pct": 2, "size_pct": 50.5}, {"price": 130, "size_pct": 49.5}]}'
    )
    alert = parse_alert(body, fixed_symbol=None, allowed_actions=list(ACTIONS))
    assert alert.as_json()["take_profit_ladder"] == [
        {"pct": "2", "size_pct": "50.5"},
        {"price": "130", "size_pct": "49.5"},
    ]
    trailing = parse_alert(
        {"action": "sell", "symbol": "BTCUSDT", "trailing_stop_pct": "1.5"}, fixed_symbol=None, allowed_actions=["sell"]
    )
    assert trailing.trailing_stop_pct == Decimal("1.5") and trailing.take_profit_ladder is None
