"""Emulated trailing stops (a symbol whose venue has none): watched while `new` on the heartbeat's stored
prices, claimed once, then sent as one market order under the order's client id; the watch survives a restart."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import select

from core import brokers
from core.infra.bus import book_key
from core.infra.db import session_scope
from core.models import BrokerConnection, Order, TrailingWatch
from core.orders import placement, trailing_watch
from core.orders.outcome import await_venue
from core.orders.ticket import Ticket, check_ticket, record_ticket
from sim.spot.market import DEFAULT_SYMBOLS


@pytest.fixture(scope="module")
def sim_options():
    # BTCUSDT without allowTrailingStop: its trailing stops are emulated.
    return {"symbols": tuple(replace(s, trailing_stop=s.symbol != "BTCUSDT") for s in DEFAULT_SYMBOLS)}


def _heartbeat(redis_client, price: str) -> None:
    """The top of book the feeds keep for the heartbeat ("sim") listing of BTCUSDT."""
    redis_client.set(book_key("sim", "BTCUSDT"), json.dumps({"bid": price, "ask": price, "symbol": "BTCUSDT"}))


def _trailing_stop(trader, **fields) -> int:
    with session_scope() as session:
        exchange = brokers.exchange_for(session.get(BrokerConnection, trader.broker_id))
        ticket = Ticket(
            **{
                "broker_id": trader.broker_id,
                "symbol": "BTCUSDT",
                "side": "sell",
                "type": "trailing_stop",
                "size_mode": "quantity",
                "size": Decimal("0.1"),
                "trail_pct": Decimal("2"),
            }
            | fields
        )
        checked = check_ticket(
            session, trader.user_id, ticket, last_price=lambda s: brokers.last_price(exchange, s), balances=None
        )
        assert "watched by Aristobot: this venue has no trailing stop" in checked.summary()
        [order] = record_ticket(session, trader.user_id, checked)
        return order.id


def _watch(order_id: int) -> TrailingWatch:
    with session_scope() as session:
        watch = session.get(TrailingWatch, order_id)
        session.expunge_all()
        return watch


@pytest.mark.parametrize(
    ("side", "activation", "extreme", "price", "expected"),
    [
        ("sell", None, None, "100", ("100", False)),  # activates at once, from the first price
        ("sell", None, "100", "110", ("110", False)),  # follows the high
        ("sell", None, "110", "107.8", ("110", True)),  # 2 % below the high
        ("sell", "105", None, "104", (None, False)),  # waits for its activation price
        ("sell", "105", None, "105", ("105", False)),
        ("buy", None, "100", "90", ("90", False)),  # a buy follows the low
        ("buy", None, "90", "91.8", ("90", True)),
        ("buy", "95", None, "96", (None, False)),
    ],
)
def test_a_watch_step(side, activation, extreme, price, expected):
    moved = trailing_watch.step(
        side,
        Decimal("2"),
        Decimal(activation) if activation else None,
        Decimal(extreme) if extreme else None,
        Decimal(price),
    )
    assert (str(moved.extreme) if moved.extreme is not None else None, moved.crossed) == expected


def test_an_emulated_trailing_stop_trails_the_heartbeat_then_is_sent_once_at_market(trader, sim, redis_client):
    order_id = _trailing_stop(trader)
    sent: list[int] = []
    outcome = placement.place(order_id)  # the worker's first attempt: armed, nothing sent
    assert (outcome.state, outcome.message) == ("new", trailing_watch.WATCHING)
    assert trader.at_sim(order_id) == []
    assert await_venue(order_id, timeout_s=0).watched  # the ticket's notice says so instead of "no answer yet"
    _heartbeat(redis_client, "60000")
    # Other tests' watches may share the database (and this heartbeat): only this order's fate is asserted.
    assert order_id not in trailing_watch.watch_pass(sent.append)
    _heartbeat(redis_client, "66000")
    trailing_watch.watch_pass(sent.append)
    assert _watch(order_id).extreme == Decimal("66000")  # stored: a restarted worker goes on from here
    with session_scope() as session:  # what the open orders show
        assert trailing_watch.watched_levels(session, [session.get(Order, order_id)]) == {order_id: Decimal("64680")}
    _heartbeat(redis_client, "64800")  # 1.8 % off the high
    assert order_id not in trailing_watch.watch_pass(sent.append) and placement.place(order_id).state == "new"
    with session_scope() as session:  # watched, not stuck: reconciliation does not re-enqueue it
        assert session.scalar(select(Order.id).where(Order.id == order_id, ~trailing_watch.waiting_watch())) is None
    _heartbeat(redis_client, "64600")  # 2.1 % off the high
    assert order_id in trailing_watch.watch_pass(sent.append)
    assert order_id not in trailing_watch.watch_pass(sent.append)  # claimed once
    assert sent.count(order_id) == 1
    watch = _watch(order_id)
    assert (watch.trigger_price, watch.triggered_at is not None) == (Decimal("64600"), True)
    assert placement.place(order_id).state == "filled"
    assert placement.place(order_id).message == "already filled"  # a redelivered task sends nothing
    [at_venue] = trader.at_sim(order_id)
    assert (at_venue.type.value, at_venue.side.value, at_venue.quantity) == ("MARKET", "SELL", Decimal("0.1"))
    done = trader.reload(order_id)
    assert (done.type, done.trail_pct, done.state, done.filled_quantity) == (
        "trailing_stop",
        Decimal("2"),
        "filled",
        Decimal("0.1"),
    )


def test_an_emulated_trailing_stop_cancelled_while_watched_is_never_sent(trader, redis_client):
    order_id = _trailing_stop(trader, stop_price=Decimal("900000"))
    placement.place(order_id)
    assert placement.cancel(order_id).state == "cancelled"
    for price in ("900000", "10000"):  # reaches the activation, then falls far below
        _heartbeat(redis_client, price)
        assert order_id not in trailing_watch.watch_pass(lambda _: True)
    assert trader.at_sim(order_id) == []
