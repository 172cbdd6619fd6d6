# ruff: noqa: F811  (the make_bot fixture imported from tests.core.bots.fixtures is a parameter here)
"""Reconciliation finds what was done at the venue outside Aristobot, against the real simulator acted on
"by hand" (the account's own client on its Binance face): an order placed there (external, followed,
told once), a webhook's stop cancelled there (flagged, told, placed again; our own cancel is not a
finding), balances moved by a trade made there (told once), and a pass while the venue is down (nothing
changed, told in the report, the sweep due again)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from core import reconciliation
from core.exchanges.models import OrderRequest, VenueOrder
from core.infra.db import session_scope
from core.models import Notification, Order, VenueAnswer, VenueFinding
from core.orders import placement, reconcile
from core.venue_exits import changed_at_venue
from tests.core.bots.fixtures import make_bot  # noqa: F401
from tests.stop_support import DEAD_URL, bought, protected_entry
from tests.trading_support import Trader


def _pass(trader: Trader, *, sweep: bool = False) -> reconcile.BrokerReport:
    return reconciliation.reconcile_broker(trader.broker_id, lambda _order_id: False, full_sweep=sweep)


def _titles(trader: Trader) -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(Notification.title).where(Notification.user_id == trader.user_id)))


def _findings(trader: Trader, kind: str) -> list[VenueFinding]:
    with session_scope() as session:
        rows = list(
            session.scalars(
                select(VenueFinding).where(VenueFinding.broker_id == trader.broker_id, VenueFinding.kind == kind)
            )
        )
        session.expunge_all()
        return rows


def _by_hand(trader: Trader, client_id: str, **fields) -> str:
    values = {"symbol": "BTCUSDT", "side": "buy", "type": "limit", "quantity": Decimal("0.01")} | fields
    if values["type"] == "limit":
        values.setdefault("price", Decimal("1000"))
    return trader.by_hand().place_order(OrderRequest(client_order_id=client_id, **values)).venue_order_id


def _placed(trader: Trader, order_id: int) -> str:
    """The orders queue's part, done here: place the order placed again. When a Celery worker of this test
    session took it from the queue first, placing is idempotent ("sent": in that worker's hands) and its
    result is awaited."""
    state = placement.place(order_id).state
    deadline = time.monotonic() + 30
    while state == "sent" and time.monotonic() < deadline:
        time.sleep(0.1)
        state = trader.reload(order_id).state
    return state


def test_an_order_placed_by_hand_is_recorded_as_external_once_followed_and_cancellable(trader: Trader):
    assert _pass(trader).external == 0
    venue_id = _by_hand(trader, "web_hand_1")
    report = _pass(trader)
    assert (report.external, report.errors) == (1, [])
    with session_scope() as session:
        order = session.scalar(select(Order).where(Order.broker_id == trader.broker_id, Order.source == "external"))
        assert (order.venue_order_id, order.client_order_id, order.state) == (venue_id, None, "open")
        assert (order.side, order.type, order.price, order.quantity) == ("buy", "limit", 1000, Decimal("0.01"))
        assert order.events[0].cause == "found_at_venue"
        raw = session.scalar(select(VenueAnswer.payload).where(VenueAnswer.order_id == order.id))
        external_id = order.id
    assert raw["clientOrderId"] == "web_hand_1"
    assert [f.order_id for f in _findings(trader, "external_order")] == [external_id]
    assert sum("placed outside Aristobot" in title for title in _titles(trader)) == 1
    assert _pass(trader).external == 0  # known now: recorded once

    trader.by_hand().cancel_order("BTCUSDT", venue_order_id=venue_id)
    _pass(trader)
    assert trader.reload(external_id).state == "cancelled"  # followed by its venue id
    _by_hand(trader, "web_hand_2")
    _pass(trader)
    with session_scope() as session:
        second = session.scalar(select(Order.id).where(Order.source == "external", Order.state == "open"))
    assert placement.cancel(second).state == "cancelled"  # cancellable from Aristobot too


def test_a_stop_cancelled_by_hand_is_flagged_told_and_placed_again_but_not_our_own_cancel(trader: Trader):
    webhook_id, stop_id = protected_entry(trader)
    stop = trader.reload(stop_id)
    trader.by_hand().cancel_order("BTCUSDT", client_order_id=stop.client_order_id)
    report = _pass(trader)
    assert (report.exits_flagged, report.errors) == (1, [])
    [finding] = _findings(trader, "protection_cancelled")
    assert (finding.order_id, finding.webhook_id, finding.bot_id) == (stop_id, webhook_id, None)
    assert finding.detail["outcome"] == f"placed again as #{finding.replacement_order_id}"
    again = trader.reload(finding.replacement_order_id)
    assert (again.type, again.side, again.stop_price, again.quantity) == ("stop_loss", "sell", 1000, stop.quantity)
    assert (again.source, again.source_ref, again.oco_group) == (stop.source, stop.source_ref, stop.oco_group)
    assert any(title.startswith("Protective stop loss of webhook") for title in _titles(trader))
    assert _placed(trader, again.id) == "open"  # the worker's part (the orders queue)

    assert placement.cancel(again.id).state == "cancelled"  # ours: not a change made at the venue
    assert _pass(trader).exits_flagged == 0
    assert len(_findings(trader, "protection_cancelled")) == 1


def test_balances_moved_by_a_trade_made_by_hand_are_told_once(trader: Trader):
    assert _pass(trader, sweep=True).balance_drifts == 0  # the first sweep takes the baseline
    bought(trader, "0.01")  # through Aristobot: our fills explain it
    assert _pass(trader, sweep=True).balance_drifts == 0
    _by_hand(trader, "web_eth", symbol="ETHUSDT", type="market", quantity=Decimal("0.5"))
    report = _pass(trader, sweep=True)
    assert report.balance_drifts == 2
    assert sorted(f.detail["asset"] for f in _findings(trader, "balance_drift")) == ["ETH", "USDT"]
    eth = next(f for f in _findings(trader, "balance_drift") if f.detail["asset"] == "ETH")
    assert Decimal(eth.detail["venue"]) - Decimal(eth.detail["expected"]) > Decimal("0.49")
    assert sum(title.startswith("Balance changed at the venue") for title in _titles(trader)) == 2
    assert _pass(trader, sweep=True).balance_drifts == 0  # told once: the venue's balance is the baseline now


@pytest.mark.slow  # ~3 s: the unreachable venue's retries with backoff, then a new adapter's set-up
def test_a_pass_while_the_venue_is_down_changes_nothing_and_is_retried(trader: Trader):
    resting = trader.order(type="limit", price=Decimal("1000"))
    assert placement.place(resting).state == "open"
    trader.point_at(DEAD_URL)
    reconcile.take_sweep(trader.broker_id)  # as the scheduled pass that finds the venue down would
    report = reconciliation.reconcile_broker(trader.broker_id, lambda _order_id: False, full_sweep=True)
    assert report.venue_unavailable and report.errors
    assert trader.reload(resting).state == "open" and not _findings(trader, "balance_drift")
    assert reconcile.sweep_is_due(trader.broker_id)  # the sweep cut short is due again
    trader.point_at(trader.sim.url)
    again = _pass(trader, sweep=True)
    assert (again.venue_unavailable, again.errors, again.synced) == (False, [], 1)


def _at_venue(client_id: str, quantity: str = "0.01", price: str | None = None, filled: str = "0") -> VenueOrder:
    return VenueOrder(
        venue_order_id=client_id.upper(),
        client_order_id=client_id,
        symbol="BTCUSDT",
        side="sell",
        type="limit",
        status="open",
        quantity=Decimal(quantity),
        filled_qty=Decimal(filled),
        avg_price=None,
        price=Decimal(price) if price else None,
    )


def test_an_exit_changed_at_the_venue_and_an_oco_that_lost_a_leg_are_told_apart_from_untouched_ones():
    stop = Order(client_order_id="ab-7", type="stop_loss", quantity=Decimal("0.01"), filled_quantity=Decimal(0))
    target = Order(client_order_id="ab-8", type="limit", quantity=Decimal("0.01"), price=Decimal("70000"))
    oco = Order(client_order_id="ab-9", type="oco", quantity=Decimal("0.01"), price=Decimal("70000"))
    untouched = {v.client_order_id: v for v in (_at_venue("ab-7"), _at_venue("ab-8", price="70000"))}
    both_legs = {v.client_order_id: v for v in (_at_venue("ab-9-tp", price="70000"), _at_venue("ab-9-sl"))}
    assert [changed_at_venue(o, untouched | both_legs) for o in (stop, target, oco)] == [None, None, None]
    assert changed_at_venue(stop, {"ab-7": _at_venue("ab-7", quantity="0.005")}) == (
        "was changed (quantity 0.005, price None)"
    )
    assert changed_at_venue(target, {"ab-8": _at_venue("ab-8", price="71000")}).startswith("was changed")
    assert changed_at_venue(oco, {"ab-9-tp": both_legs["ab-9-tp"]}) == "lost its stop-loss leg (cancelled)"
    assert changed_at_venue(oco, {"ab-9-sl": both_legs["ab-9-sl"]}) == "lost its take-profit leg (cancelled)"
    traded = {"ab-9-sl": _at_venue("ab-9-sl", filled="0.002")}
    assert changed_at_venue(oco, traded) is None  # a leg that traded: the OCO settles, nothing was changed


def test_a_bot_stop_cancelled_by_hand_is_placed_again_only_while_the_bot_holds_the_position(trader: Trader, make_bot):
    bot_id = make_bot(trader, start=False)
    bought(trader, "0.02", source="bot", source_ref=str(bot_id))
    stop_id = trader.order(side="sell", type="stop_loss", quantity=Decimal("0.02"), stop_price=Decimal("1000"))
    with session_scope() as session:
        stop = session.get(Order, stop_id)
        stop.source, stop.source_ref = "bot", str(bot_id)  # as core.bots.bot_orders.protective_intent records it
    assert placement.place(stop_id).state == "open"
    trader.by_hand().cancel_order("BTCUSDT", client_order_id=trader.reload(stop_id).client_order_id)
    assert _pass(trader).exits_flagged == 1
    [first] = _findings(trader, "protection_cancelled")
    assert (first.bot_id, first.webhook_id) == (bot_id, None)
    again = trader.reload(first.replacement_order_id)
    assert (again.stop_price, again.source_ref) == (1000, str(bot_id))
    assert Decimal("0.0199") < again.quantity < Decimal("0.02")  # what the bot holds: 0.02 less the fee in BTC

    assert _placed(trader, again.id) == "open"
    bought(trader, "0.02", side="sell", source="bot", source_ref=str(bot_id))  # the bot closed its position
    trader.by_hand().cancel_order("BTCUSDT", client_order_id=again.client_order_id)
    assert _pass(trader).exits_flagged == 1
    second = next(f for f in _findings(trader, "protection_cancelled") if f.order_id == again.id)
    assert second.replacement_order_id is None
    assert second.detail["outcome"] == "not placed again: the position no longer needs it"
