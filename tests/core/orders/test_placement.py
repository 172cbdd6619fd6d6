"""The pipeline against a real simulator over HTTP: exactly-once placement, truthful states, fills once."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core import brokers
from core.exchanges.models import VenueTrade
from core.infra.bus import order_events_channel, ratelimit_budget
from core.infra.db import session_scope, utcnow
from core.models import BrokerConnection, Fill, Order
from core.orders import fills, placement
from core.orders.useful_life import manual_wait_s
from core.orders.venue_request import oco_request_of
from tests.notification_support import notifications_of
from tests.support import free_port
from tests.trading_support import make_trader

NOW = timedelta(0)


def states(order) -> list[str]:
    return [e.to_state for e in order.events]


def test_market_order_is_sent_filled_and_its_fills_stored_once(trader, redis_client):
    listener = redis_client.pubsub()
    listener.subscribe(order_events_channel(trader.user_id))
    order_id = trader.order(quantity=Decimal("0.01"))

    outcome = placement.place(order_id)

    order = trader.reload(order_id)
    assert outcome.state == "filled" and order.state == "filled"
    assert states(order) == ["sent", "filled"]
    assert order.filled_quantity == Decimal("0.01") and order.average_price > 0
    assert sum(f.quantity for f in order.fills) == Decimal("0.01")
    assert len(trader.at_sim(order_id)) == 1
    published = [
        json.loads(m["data"]) for m in iter(lambda: listener.get_message(timeout=1), None) if m["type"] == "message"
    ]
    assert [p["state"] for p in published if p["type"] == "order"][:2] == ["sent", "filled"]

    # Placing again (a redelivered task) neither sends nor changes anything.
    again = placement.place(order_id)
    assert again.changed is False and len(trader.at_sim(order_id)) == 1


def test_fills_ledger_deduplicates_by_venue_trade_id(trader):
    order_id = trader.order()
    placement.place(order_id)
    trade = VenueTrade(
        trade_id="T-1",
        order_id="999",
        symbol="BTCUSDT",
        side="buy",
        price=Decimal("1"),
        qty=Decimal("2"),
        fee=Decimal(0),
        fee_asset="USDT",
        time_ms=1_700_000_000_000,
    )
    with session_scope() as session:
        broker = session.get(BrokerConnection, trader.broker_id)
        assert fills.record_fills(session, broker.user_id, broker.id, [trade, trade]) == 1
        assert fills.record_fills(session, broker.user_id, broker.id, [trade]) == 0
        count = len(
            session.scalars(select(Fill).where(Fill.broker_id == trader.broker_id, Fill.venue_trade_id == "T-1")).all()
        )
    assert count == 1


def test_limit_order_rests_open_then_cancels(trader):
    order_id = trader.order(type="limit", price=Decimal("1000"), quantity=Decimal("0.01"))
    assert placement.place(order_id).state == "open"
    outcome = placement.cancel(order_id)
    order = trader.reload(order_id)
    assert outcome.state == "cancelled" and order.state == "cancelled"
    assert states(order) == ["sent", "open", "cancelled"]
    assert trader.at_sim(order_id)[0].status.value == "CANCELED"


def test_cancel_before_sending_never_reaches_the_venue(trader):
    order_id = trader.order(type="limit", price=Decimal("1000"))
    assert placement.cancel(order_id).state == "cancelled"
    assert placement.place(order_id).changed is False
    assert trader.at_sim(order_id) == []


def test_lost_order_response_ends_with_exactly_one_order_at_the_venue(trader, sim):
    sim.set_faults(lose_next_order_response=True)
    try:
        order_id = trader.order(type="limit", price=Decimal("1000"))
        outcome = placement.place(order_id)
    finally:
        sim.clear_faults()
    assert outcome.state == "open"
    assert len(trader.at_sim(order_id)) == 1
    assert trader.reload(order_id).venue_order_id == str(trader.at_sim(order_id)[0].order_id)


def test_malformed_venue_answer_is_resolved_by_client_order_id(trader, garbling_proxy):
    trader.point_at(garbling_proxy.url)
    order_id = trader.order()
    outcome = placement.place(order_id)
    assert outcome.state == "filled"
    assert len(trader.at_sim(order_id)) == 1


def test_venue_down_leaves_order_unknown_until_a_query_proves_it_absent(trader):
    with session_scope() as session:
        exchange = brokers.exchange_for(session.get(BrokerConnection, trader.broker_id))
    exchange.markets()  # cached by the worker; then the venue goes away
    exchange.base_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    order_id = trader.order(type="limit", price=Decimal("1000"))

    outcome = placement.place(order_id)
    order = trader.reload(order_id)
    assert outcome.state == "unknown" and order.error_kind == "unavailable"
    assert "client order id" in order.error_message
    assert placement.sync(order_id).state == "unknown"  # still unreachable: no guess

    exchange.base_url = trader.sim.url
    assert placement.sync(order_id).state == "unknown"  # absent, but too young to resend safely
    resolved = placement.sync(order_id, resend_after=NOW)
    assert resolved.state == "open"
    assert len(trader.at_sim(order_id)) == 1
    assert states(trader.reload(order_id)) == ["sent", "unknown", "sent", "open"]


def test_unknown_order_that_did_land_is_found_not_resent(trader, garbling_proxy):
    trader.point_at(garbling_proxy.url)
    garbling_proxy.lookups_down = True  # the answer is garbage AND the lookup fails: outcome unknown
    order_id = trader.order(type="limit", price=Decimal("1000"))
    assert placement.place(order_id).state == "unknown"
    garbling_proxy.lookups_down = False
    assert placement.sync(order_id, resend_after=NOW).state == "open"
    assert len(trader.at_sim(order_id)) == 1


def test_stale_unknown_order_absent_at_venue_is_rejected_not_resent(trader):
    with session_scope() as session:
        exchange = brokers.exchange_for(session.get(BrokerConnection, trader.broker_id))
    exchange.markets()
    exchange.base_url = f"http://127.0.0.1:{free_port()}"
    order_id = trader.order()
    assert placement.place(order_id).state == "unknown"
    exchange.base_url = trader.sim.url
    outcome = placement.sync(order_id, resend_after=NOW, resend_until=NOW)
    assert outcome.state == "rejected" and trader.at_sim(order_id) == []
    assert "never received" in trader.reload(order_id).error_message


def test_invalid_quantity_is_rejected_before_sending(trader):
    order_id = trader.order(quantity=Decimal("0.000001"))
    outcome = placement.place(order_id)
    order = trader.reload(order_id)
    assert outcome.state == "rejected" and order.error_kind == "invalid_order"
    assert "rounds to 0" in order.error_message or "below" in order.error_message
    assert states(order) == ["rejected"] and trader.at_sim(order_id) == []


def test_unknown_symbol_is_rejected(trader):
    order_id = trader.order(symbol="NOPEUSDT")
    placement.place(order_id)
    order = trader.reload(order_id)
    assert order.state == "rejected" and "unknown symbol" in order.error_message


def test_insufficient_balance_is_rejected_with_the_venue_message(trader):
    order_id = trader.order(side="sell", type="limit", price=Decimal("1000000"), quantity=Decimal("50"))
    outcome = placement.place(order_id)
    order = trader.reload(order_id)
    assert outcome.state == "rejected" and order.error_kind == "insufficient_funds"
    assert "insufficient" in order.error_message.lower()
    told = notifications_of(trader.user_id, "order")
    assert [(n.severity, n.title, n.body) for n in told] == [
        ("error", f"Order #{order_id} rejected (sell BTCUSDT)", order.error_message)
    ]


def test_wrong_api_key_is_rejected_as_auth_error(trader):
    with session_scope() as session:
        broker = session.get(BrokerConnection, trader.broker_id)
        broker.set_credentials("wrongkey123456", "wrong-secret-value")
    brokers.forget_exchange(trader.broker_id)
    order_id = trader.order()
    outcome = placement.place(order_id)
    order = trader.reload(order_id)
    assert outcome.state == "rejected" and order.error_kind == "auth"
    assert trader.at_sim(order_id) == []


def test_rate_limit_storm_rejects_truthfully_without_placing(trader, sim):
    with session_scope() as session:
        exchange = brokers.exchange_for(session.get(BrokerConnection, trader.broker_id))
    exchange.markets()
    sim.set_faults(http_429_count=50, retry_after=0)
    try:
        order_id = trader.order()
        outcome = placement.place(order_id)
    finally:
        sim.clear_faults()
    order = trader.reload(order_id)
    assert trader.at_sim(order_id) == []
    # Either the follow-up lookup got through (rejected, not placed) or it could not ask (unknown):
    # never "filled" or "open" for an order the venue does not have.
    assert outcome.state in ("rejected", "unknown")
    assert "rate limited" in order.error_message.lower() or "429" in order.error_message
    if outcome.state == "unknown":
        assert placement.sync(order_id, resend_after=NOW).state in ("filled", "open")
        assert len(trader.at_sim(order_id)) == 1


def test_oco_is_placed_natively_and_cancelled_as_a_whole(trader):
    with session_scope() as session:
        last = brokers.last_price(brokers.exchange_for(session.get(BrokerConnection, trader.broker_id)), "BTCUSDT")
    order_id = trader.order(
        side="sell",
        type="oco",
        quantity=Decimal("0.01"),
        price=(last * Decimal("1.5")).quantize(Decimal("0.01")),
        stop_price=(last * Decimal("0.5")).quantize(Decimal("0.01")),
    )
    assert placement.place(order_id).state == "open"
    assert len(trader.at_sim(order_id)) == 2
    assert placement.sync(order_id).state == "open"
    assert placement.cancel(order_id).state == "cancelled"
    assert all(o.status.value in ("CANCELED", "EXPIRED") for o in trader.at_sim(order_id))


def test_a_second_account_on_the_same_venue_starts_with_its_markets_and_clock(trader, make_user, sim, garbling_proxy):
    placement.place(trader.order())  # the first account's adapter loads the markets and measures the clock
    second = make_trader(make_user, sim)
    with session_scope() as session:
        exchange = brokers.exchange_for(session.get(BrokerConnection, second.broker_id))
    assert exchange.has_markets and exchange.clock.offset_ms is not None  # its first order asks for neither
    assert placement.place(second.order()).state == "filled"

    elsewhere = make_trader(make_user, sim)
    elsewhere.point_at(garbling_proxy.url)  # another URL: another venue as far as we know
    with session_scope() as session:
        assert not brokers.exchange_for(session.get(BrokerConnection, elsewhere.broker_id)).has_markets


# ---- our own limiter: orders wait their turn, and expire only past the signal's useful life ----

VENUE_BUDGET = ratelimit_budget("sim", 6000, 60000)  # the simulator's IP weight budget as the limiter keeps it


@pytest.fixture()
def spent_budget(redis_client):
    """Fill the venue's weight budget with requests made `age_s` seconds ago (frees 60 - age_s s later)."""

    def spend(age_s: float) -> None:
        stamp = int((time.time() - age_s) * 1000)
        redis_client.delete(VENUE_BUDGET)
        redis_client.lpush(VENUE_BUDGET, *[stamp] * 6000)
        redis_client.pexpire(VENUE_BUDGET, 60_000)

    yield spend
    redis_client.delete(VENUE_BUDGET)


def _backdate(order_id: int, seconds: float) -> None:
    with session_scope() as session:
        order = session.get(Order, order_id)
        order.created_at = order.updated_at = utcnow() - timedelta(seconds=seconds)


def test_an_order_waits_for_the_spent_budget_instead_of_being_refused(trader, spent_budget):
    order_id = trader.order()
    trader_exchange(trader).markets()
    spent_budget(58.5)  # frees in 1.5 s; the order's useful life is a minute
    started = time.monotonic()
    outcome = placement.place(order_id)
    assert outcome.state == "filled" and time.monotonic() - started >= 1.0
    assert len(trader.at_sim(order_id)) == 1


def test_an_order_that_cannot_be_placed_in_its_useful_life_ends_expired_with_the_reason(trader, spent_budget):
    order_id = trader.order()
    trader_exchange(trader).markets()
    _backdate(order_id, manual_wait_s() - 2)  # 2 s of its life left, the budget frees in 50 s
    spent_budget(10)
    outcome = placement.place(order_id)
    order = trader.reload(order_id)
    assert outcome.state == order.state == "expired"
    assert order.error_kind == "window_passed" and "useful life" in order.error_message
    assert order.events[-1].cause == "budget_wait_expired"
    assert trader.at_sim(order_id) == []


def trader_exchange(trader):
    with session_scope() as session:
        return brokers.exchange_for(session.get(BrokerConnection, trader.broker_id))


def _emulated_oco_with_only_its_stop(trader, stop_factor: str) -> tuple[int, object]:
    """An OCO sell on a venue without OCO whose first attempt placed the stop leg and lost the limit leg."""
    exchange = trader_exchange(trader)
    exchange.has_native_oco = False
    last = exchange.klines("BTCUSDT", "1m", limit=1)[-1].close
    order_id = trader.order(
        type="oco",
        side="sell",
        quantity=Decimal("0.01"),
        price=(last * Decimal("1.3")).quantize(Decimal("0.01")),
        stop_price=(last * Decimal(stop_factor)).quantize(Decimal("0.01")),
    )
    with session_scope() as session:
        order = session.get(Order, order_id)
        exchange.place_order(oco_request_of(order).stop_loss_leg())
        order.state = "unknown"  # what the lost answer of the second leg left
    _backdate(order_id, 60)
    return order_id, last


def test_an_emulated_oco_missing_its_limit_leg_gets_that_leg_not_a_whole_resend(trader):
    order_id, _ = _emulated_oco_with_only_its_stop(trader, "0.7")
    outcome = placement.sync(order_id, resend_after=timedelta(seconds=30))
    assert outcome.state == "open"
    legs = sorted(o.client_order_id[-3:] for o in trader.at_sim(order_id))
    assert legs == ["-sl", "-tp"]  # the resting stop kept, the limit leg added, nothing twice


def test_an_emulated_oco_whose_stop_traded_is_filled_and_gets_no_other_leg(trader, sim):
    order_id, last = _emulated_oco_with_only_its_stop(trader, "0.9")
    sim.inject_print("BTCUSDT", (last * Decimal("0.8")).quantize(Decimal("0.01")))  # the stop trades
    outcome = placement.sync(order_id, resend_after=timedelta(seconds=30))
    assert outcome.state == "filled"
    assert [o.client_order_id[-3:] for o in trader.at_sim(order_id)] == ["-sl"]
