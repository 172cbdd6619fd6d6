"""The administrator's trading halt in the order pipeline: new orders end rejected with the reason,
orders already in flight complete, cancels and syncs go on; switching it off lets orders through again."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.halt import HALTED, trading_halted
from core.infra.bus import task_sender
from core.infra.db import session_scope
from core.orders import placement
from core.webhooks.processing import process_alert
from tests.stop_support import accepted_buy_alert, trading_halt


@pytest.fixture()
def halted():
    with trading_halt():
        yield


def test_switch_is_durable_and_off_by_default(infra):
    with session_scope() as session:
        assert not trading_halted(session)
    with trading_halt(), session_scope() as session:
        assert trading_halted(session)
    with session_scope() as session:
        assert not trading_halted(session)


@pytest.mark.parametrize("source", ["manual", "bot", "webhook"])
def test_no_new_order_from_any_source_while_halted(trader, halted, source):
    order_id = trader.order(source=source, source_ref="1")
    outcome = placement.place(order_id)
    order = trader.reload(order_id)
    assert outcome.state == order.state == "rejected"
    assert order.error_message == HALTED and order.error_kind == "halted"
    assert [e.cause for e in order.events][-1] == "trading_halted"
    assert trader.at_sim(order_id) == []  # nothing reached the venue


def test_halt_while_an_order_is_in_flight(trader):
    resting = trader.order(type="limit", price=Decimal("1000"))
    assert placement.place(resting).state == "open"
    flying = trader.order()
    with session_scope() as session:  # the worker moved it to `sent`; the venue call is under way
        prepared = placement.prepare(session, placement._locked(session, flying))
    with trading_halt():
        assert placement.send_prepared(prepared).state == "filled"  # in flight: it completes, nothing lost
        assert len(trader.at_sim(flying)) == 1
        assert placement.sync(resting).state == "open"  # syncs (reconciliation) still run
        assert placement.cancel(resting).state == "cancelled"  # cancels still run
        refused = trader.order()
        assert placement.place(refused).state == "rejected"
    assert placement.place(trader.order()).state == "filled"  # trading resumed


def test_a_webhook_alert_while_halted_is_processed_and_its_order_refused(trader, halted):
    _, _, alert_id = accepted_buy_alert(trader)
    [order_id] = process_alert(alert_id, task_sender(), send_now=True)
    order = trader.reload(order_id)
    assert order.state == "rejected" and order.error_message == HALTED and trader.at_sim(order_id) == []
