"""Stop-loss / take-profit after a webhook entry fills: what is recorded, exactly once, and when not."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from core import tasks
from core.infra.db import new_session, session_scope, utcnow
from core.ledger.positions import net_position
from core.models import Fill, Order, Webhook, WebhookAlert
from core.webhooks.processing import process_alert
from core.webhooks.protection import protect_entry, record_protection, unprotected_entry_ids
from tests.core.webhooks.fixtures import sender
from tests.core.webhooks.test_processing import _accepted


def _filled_entry(
    webhook_id: int,
    action: str = "buy",
    *,
    quantity: str = "0.01",
    price: str = "100",
    fee: str = "0.00001",
    fee_asset: str = "BTC",
    **exits,
) -> tuple[int, int]:
    """An alert with exit prices whose entry order filled at `price` (fills in the ledger)."""
    alert_id = _accepted(webhook_id, action, **{k: v if isinstance(v, list) else str(v) for k, v in exits.items()})
    [entry_id] = process_alert(alert_id, sender())
    with session_scope() as session:
        entry = session.get(Order, entry_id)
        entry.state, entry.filled_quantity, entry.average_price = "filled", Decimal(quantity), Decimal(price)
        session.add(
            Fill(
                order_id=entry.id,
                user_id=entry.user_id,
                broker_id=entry.broker_id,
                symbol=entry.symbol,
                side=action,
                venue_trade_id=secrets.token_hex(6),
                price=Decimal(price),
                quantity=Decimal(quantity),
                fee=Decimal(fee),
                fee_asset=fee_asset,
                traded_at=utcnow(),
            )
        )
    return alert_id, entry_id


def _protections(entry_id: int) -> list[Order]:
    with new_session() as session:
        return list(session.scalars(select(Order).where(Order.oco_group == f"protect:{entry_id}")))


def _resting_stop(webhook_id: int, orders_queue) -> int:
    """A filled long whose stop-loss rests at the venue (holding the asset locked); the queue emptied."""
    _, entry_id = _filled_entry(webhook_id, stop_loss=90)
    stop_id = protect_entry(entry_id, sender())
    with session_scope() as session:
        session.get(Order, stop_id).state = "open"
    orders_queue.delete("orders")
    return stop_id


def _processed_after_cancel(stop_id: int, alert_id: int) -> Order:
    """The venue confirmed the stop's cancel: the waiting alert is processed again; its one order."""
    with session_scope() as session:
        session.get(Order, stop_id).state = "cancelled"
    [order_id] = process_alert(alert_id, sender())
    with new_session() as session:
        return session.get(Order, order_id)


def _queued(orders_queue) -> list[tuple[str, str]]:
    return [
        (task["task"], task["argsrepr"])
        for task in (json.loads(raw)["headers"] for raw in orders_queue.lrange("orders", 0, -1))
    ]


def _webhook(make_user, broker_of, webhook_of) -> int:
    user, _ = make_user()
    webhook_id, _ = webhook_of(user, broker_of(user))
    return webhook_id


def test_a_filled_long_is_protected_once_by_a_sell_oco_for_what_it_bought_less_the_fee(
    make_user, broker_of, webhook_of, orders_queue
):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    alert_id, entry_id = _filled_entry(webhook_id, stop_loss=90, take_profit=120)
    orders_queue.delete("orders")

    oco_id = protect_entry(entry_id, sender())
    assert protect_entry(entry_id, sender()) is None  # the fill seen again: nothing more
    [oco] = _protections(entry_id)
    assert oco.id == oco_id and oco.state == "new"
    assert (oco.type, oco.side, oco.quantity, oco.price, oco.stop_price) == (
        "oco",
        "sell",
        Decimal("0.00999"),
        Decimal(120),
        Decimal(90),
    )
    assert (oco.source, oco.source_ref) == ("webhook", str(alert_id))
    with new_session() as session:
        alert = session.get(WebhookAlert, alert_id)
    assert alert.order_ids == [entry_id, oco_id] and f"oco protection #{oco_id}" in alert.process_result
    assert _queued(orders_queue) == [(tasks.PLACE_ORDER, f"[{oco_id}]")]


def test_one_exit_price_makes_a_single_stop_loss_or_limit_order(make_user, broker_of, webhook_of):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    _, stopped = _filled_entry(webhook_id, stop_loss=90)
    protect_entry(stopped, sender())
    [stop] = _protections(stopped)
    assert (stop.type, stop.side, stop.stop_price, stop.price) == ("stop_loss", "sell", Decimal(90), None)

    other = _webhook(make_user, broker_of, webhook_of)
    _, targeted = _filled_entry(other, take_profit=130)
    protect_entry(targeted, sender())
    [target] = _protections(targeted)
    assert (target.type, target.side, target.price, target.stop_price) == ("limit", "sell", Decimal(130), None)


def test_a_short_is_protected_by_a_buy_with_its_stop_above(make_user, broker_of, webhook_of):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    _, entry_id = _filled_entry(webhook_id, "sell", fee="0.001", fee_asset="USDT", stop_loss=110, take_profit=80)
    protect_entry(entry_id, sender())
    [oco] = _protections(entry_id)
    assert (oco.side, oco.quantity, oco.price, oco.stop_price) == ("buy", Decimal("0.01"), Decimal(80), Decimal(110))


def test_prices_the_fill_already_crossed_are_refused_visibly_and_not_sent(
    make_user, broker_of, webhook_of, orders_queue
):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    alert_id, entry_id = _filled_entry(webhook_id, price="100", stop_loss=101, take_profit=150)
    orders_queue.delete("orders")
    protect_entry(entry_id, sender())
    [refused] = _protections(entry_id)
    assert refused.state == "rejected" and "stop-loss 101 is not below the entry price 100" in refused.error_message
    assert orders_queue.llen("orders") == 0
    assert protect_entry(entry_id, sender()) is None and len(_protections(entry_id)) == 1
    with new_session() as session:
        assert "refused" in session.get(WebhookAlert, alert_id).process_result


def test_nothing_is_protected_before_the_fill_without_exit_prices_or_after_a_later_exit(
    make_user, broker_of, webhook_of
):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    [open_entry] = process_alert(_accepted(webhook_id, "buy", stop_loss="90"), sender())
    _, plain = _filled_entry(webhook_id)
    _, reversed_later = _filled_entry(webhook_id, stop_loss=90)
    process_alert(_accepted(webhook_id, "sell", time="later"), sender())  # the strategy already exited
    for entry_id in (open_entry, plain, reversed_later):
        assert protect_entry(entry_id, sender()) is None and _protections(entry_id) == []


def test_fills_missing_from_the_ledger_postpone_the_protection_to_the_sweep(make_user, broker_of, webhook_of):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    _, entry_id = _filled_entry(webhook_id, stop_loss=90)
    with session_scope() as session:
        session.execute(
            update(Order)
            .where(Order.id == entry_id)
            .values(filled_quantity=Decimal("0.02"), updated_at=utcnow() - timedelta(minutes=1))
        )
    with session_scope() as session, pytest.raises(LookupError, match="not all recorded"):
        record_protection(session, entry_id)
    with new_session() as session:
        assert entry_id in unprotected_entry_ids(session)


def test_the_sweep_finds_old_unprotected_entries_only_until_they_are_protected(make_user, broker_of, webhook_of):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    _, old = _filled_entry(webhook_id, take_profit=150)
    _, fresh = _filled_entry(webhook_id, take_profit=150)
    _, unasked = _filled_entry(webhook_id)
    with session_scope() as session:
        session.execute(
            update(Order).where(Order.id.in_([old, unasked])).values(updated_at=utcnow() - timedelta(seconds=30))
        )
    with new_session() as session:
        found = unprotected_entry_ids(session)
    assert old in found and fresh not in found and unasked not in found
    protect_entry(old, sender())
    with new_session() as session:
        assert old not in unprotected_entry_ids(session)


def test_close_waits_for_the_resting_protection_to_be_cancelled_at_the_venue(
    make_user, broker_of, webhook_of, orders_queue
):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    stop_id = _resting_stop(webhook_id, orders_queue)
    close_id = _accepted(webhook_id, "close", time="close")
    assert process_alert(close_id, sender()) == []
    with new_session() as session:
        close = session.get(WebhookAlert, close_id)
        assert close.processed_at is None and f"cancelling protective order(s) #{stop_id}" in close.process_result
        assert net_position(session, session.get(Webhook, webhook_id), "BTCUSDT") == Decimal("0.00999")
    assert _queued(orders_queue) == [(tasks.TRADE_AFTER_CANCELLING, f"[{close_id}]")]

    # Once the venue confirmed the cancel, the close sells what the webhook holds.
    sell = _processed_after_cancel(stop_id, close_id)
    assert (sell.side, sell.quantity) == ("sell", Decimal("0.00999"))


def test_close_cancels_a_protection_never_sent_and_sells_at_once(make_user, broker_of, webhook_of):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    _, entry_id = _filled_entry(webhook_id, take_profit=150)
    target_id = protect_entry(entry_id, sender())
    [sell_id] = process_alert(_accepted(webhook_id, "close", time="close"), sender())
    with new_session() as session:
        assert session.get(Order, target_id).state == "cancelled"
        assert session.get(Order, sell_id).quantity == Decimal("0.00999")


def test_a_sell_after_a_protected_buy_cancels_the_stop_first_then_sells(make_user, broker_of, webhook_of, orders_queue):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    stop_id = _resting_stop(webhook_id, orders_queue)
    exit_id = _accepted(webhook_id, "sell", time="exit")
    assert process_alert(exit_id, sender()) == []
    with new_session() as session:
        assert (
            f"cancelling protective order(s) #{stop_id} before trading"
            in session.get(WebhookAlert, exit_id).process_result
        )
    assert _queued(orders_queue) == [(tasks.TRADE_AFTER_CANCELLING, f"[{exit_id}]")]

    assert _processed_after_cancel(stop_id, exit_id).side == "sell"


def test_a_buy_adding_to_a_protected_long_leaves_its_protection_alone(make_user, broker_of, webhook_of):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    _, entry_id = _filled_entry(webhook_id, take_profit=150)
    target_id = protect_entry(entry_id, sender())
    [buy_id] = process_alert(_accepted(webhook_id, "buy", time="add"), sender())
    with new_session() as session:
        assert session.get(Order, target_id).state == "new" and session.get(Order, buy_id).side == "buy"


def test_the_fill_of_an_order_whose_alert_asked_for_no_exits_costs_no_query(make_user, broker_of, webhook_of):
    from sqlalchemy import event

    from core.infra.db import get_engine

    webhook_id = _webhook(make_user, broker_of, webhook_of)
    _, plain_entry = _filled_entry(webhook_id)  # recorded by this process: it knows there is nothing to protect
    statements = []

    def count(*_args) -> None:
        statements.append(1)

    event.listen(get_engine(), "before_cursor_execute", count)
    try:
        assert protect_entry(plain_entry, sender()) is None
    finally:
        event.remove(get_engine(), "before_cursor_execute", count)
    assert statements == [] and _protections(plain_entry) == []
