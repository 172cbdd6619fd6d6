"""Trailing stops and take-profit ladders from the ticket to the venue (a real simulator): the checks a trader
meets, the rungs' sizes, and the orders placed, trailed and filled."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from core import brokers
from core.exchanges.errors import InvalidOrder
from core.exchanges.rules import decimal_str
from core.infra.db import session_scope
from core.models import BrokerConnection, Order
from core.orders import placement
from core.orders.ticket import Ticket, check_ticket, record_ticket


def _exchange(trader):
    with session_scope() as session:
        return brokers.exchange_for(session.get(BrokerConnection, trader.broker_id))


def _last(trader) -> Decimal:
    return brokers.last_price(_exchange(trader), "BTCUSDT")


def _check(trader, **fields):
    exchange = _exchange(trader)
    ticket = Ticket(
        **{
            "broker_id": trader.broker_id,
            "symbol": "BTCUSDT",
            "side": "sell",
            "type": "trailing_stop",
            "size_mode": "quantity",
            "size": Decimal("0.1"),
        }
        | fields
    )
    with session_scope() as session:
        return check_ticket(
            session,
            trader.user_id,
            ticket,
            last_price=lambda symbol: brokers.last_price(exchange, symbol),
            balances=exchange.balances,
        )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "a trailing stop needs its trail"),
        ({"trail_pct": Decimal("0.05")}, "the trail must be between 0.1 % and 20 %"),
        ({"trail_pct": Decimal("25")}, "the trail must be between 0.1 % and 20 %"),
        ({"trail_pct": Decimal("-1")}, "trail must be a positive number"),
        ({"trail_pct": Decimal("2"), "price": Decimal("50000")}, "leave the limit price empty"),
        ({"trail_pct": Decimal("2"), "stop_price": Decimal("1")}, "a sell take-profit at 1 would trigger at once"),
        ({"trail_pct": Decimal("2"), "size": Decimal("5")}, "insufficient balance"),
        ({"type": "limit", "price": Decimal("1"), "trail_pct": Decimal("2")}, "a trail is only for a trailing stop"),
    ],
)
def test_a_trailing_stop_ticket_explains_what_is_wrong(trader, fields, message):
    with pytest.raises(InvalidOrder) as refused:
        _check(trader, **fields)
    assert message in str(refused.value)


def test_a_trailing_stop_is_recorded_sent_trailed_and_filled_at_the_venue(trader, sim):
    last = _last(trader)
    activation = (last * Decimal("1.05")).quantize(Decimal("0.01"))
    checked = _check(trader, trail_pct=Decimal("20"), stop_price=activation)
    assert checked.summary().startswith(f"SELL 0.1 BTC trailing stop 20 % activating at {decimal_str(activation)}")
    with session_scope() as session:
        [order] = record_ticket(session, trader.user_id, checked)
        order_id = order.id
    assert placement.place(order_id).state == "open"
    [at_venue] = trader.at_sim(order_id)
    assert (at_venue.type.value, at_venue.trailing_delta, at_venue.stop_price) == ("TAKE_PROFIT", 2000, activation)
    # An injected print reaches the engine only: the market's own prints go on near `last` every second. So the
    # high stays just above the activation, and its 20 % trail (~0.85 × last) is far below where they print.
    high = (activation * Decimal("1.01")).quantize(Decimal("0.01"))
    sim.inject_print("BTCUSDT", high)  # activates and sets the high; the trigger is now 20 % below it
    sim.inject_print("BTCUSDT", (high * Decimal("0.81")).quantize(Decimal("0.01")))
    assert placement.sync(order_id).state == "open"
    sim.inject_print("BTCUSDT", (high * Decimal("0.79")).quantize(Decimal("0.01")))
    assert placement.sync(order_id).state == "filled"
    done = trader.reload(order_id)
    assert (done.type, done.trail_pct, done.filled_quantity) == ("trailing_stop", Decimal("20"), Decimal("0.1"))


def test_a_ladder_is_sized_to_the_position_with_the_remainder_on_the_last_rung(trader):
    checked = _check(trader, type="tp_ladder", size=Decimal("0.10001"), ladder="+2%:33, +4%:33,+6%:34")
    assert [r.quantity for r in checked.rungs] == [Decimal("0.033"), Decimal("0.033"), Decimal("0.03401")]
    assert sum(r.quantity for r in checked.rungs) == checked.quantity == Decimal("0.10001")
    last = _last(trader)
    assert all(r.price > last for r in checked.rungs) and checked.rungs[0].price < checked.rungs[1].price


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "give the ladder's rungs as target:size%"),
        ({"ladder": "+2%:50"}, "a take-profit ladder has 2 to 10 rungs, not 1"),
        ({"ladder": "+2%:50, +4%:40"}, "the rungs' sizes add up to 90 %; they must add up to exactly 100 %"),
        ({"ladder": "+2%50, +4%:50"}, "rung 1 '+2%50' must be target:size%"),
        ({"ladder": "abc:50, +4%:50"}, "rung 1 target must be a number"),
        ({"ladder": "+2%:50, -4%:50"}, "rung 2 target must be a positive number"),
        ({"ladder": "1:50, +4%:50"}, "rung 1's target 1 is not above the entry price"),
        ({"ladder": "+2%:99.99, +4%:0.01"}, "rung 2 (0.01 % = 0.00001 BTC at"),
        ({"ladder": "+2%:50, +4%:50", "stop_price": Decimal("100000000")}, "a sell stop at 100000000 would trigger"),
        ({"ladder": "+2%:50, +4%:50", "price": Decimal("1")}, "leave the limit price empty"),
    ],
)
def test_a_ladder_ticket_explains_what_is_wrong(trader, fields, message):
    with pytest.raises(InvalidOrder) as refused:
        _check(trader, type="tp_ladder", **fields)
    assert message in str(refused.value)


def test_a_ladder_with_a_stop_is_one_oco_per_rung_and_the_stop_shrinks_as_rungs_fill(trader, sim):
    last = _last(trader)
    stop = (last * Decimal("0.8")).quantize(Decimal("0.01"))
    checked = _check(trader, type="tp_ladder", size=Decimal("0.2"), ladder="+2%:50, +4%:50", stop_price=stop)
    with session_scope() as session:
        ids = [o.id for o in record_ticket(session, trader.user_id, checked)]
    assert [placement.place(i).state for i in ids] == ["open", "open"]
    with session_scope() as session:
        rows = list(session.scalars(select(Order).where(Order.id.in_(ids)).order_by(Order.id)))
        assert {o.type for o in rows} == {"oco"} and len({o.ladder_group for o in rows}) == 1
        first_target = rows[0].price
    stops = [o for i in ids for o in trader.at_sim(i) if o.type.value == "STOP_LOSS" and o.is_open]
    assert sum(o.quantity for o in stops) == Decimal("0.2")  # the stop covers the whole position
    sim.inject_print("BTCUSDT", first_target, "0.1")  # the first rung's target trades
    assert placement.sync(ids[0]).state == "filled"
    stops = [o for i in ids for o in trader.at_sim(i) if o.type.value == "STOP_LOSS" and o.is_open]
    assert sum(o.quantity for o in stops) == Decimal("0.1")  # what is left after the first rung
