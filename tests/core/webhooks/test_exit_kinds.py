"""A webhook entry protected by a trailing stop or a take-profit ladder: what is recorded, once."""

from __future__ import annotations

from decimal import Decimal

from core.infra.db import new_session
from core.models import WebhookAlert
from core.webhooks.protection import protect_entry
from tests.core.webhooks.fixtures import sender
from tests.core.webhooks.test_protection import _filled_entry, _protections, _webhook


def test_a_trailing_stop_protects_the_long_with_its_trail(make_user, broker_of, webhook_of):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    _, entry_id = _filled_entry(webhook_id, trailing_stop_pct="2.5")
    protect_entry(entry_id, sender())
    [stop] = _protections(entry_id)
    assert (stop.type, stop.side, stop.quantity, stop.trail_pct, stop.stop_price, stop.state) == (
        "trailing_stop",
        "sell",
        Decimal("0.00999"),
        Decimal("2.5"),
        None,
        "new",
    )


def test_a_ladder_is_one_limit_per_rung_summing_to_the_position(make_user, broker_of, webhook_of, orders_queue):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    ladder = [{"pct": "2", "size_pct": "50"}, {"price": "10500", "size_pct": "50"}]
    alert_id, entry_id = _filled_entry(webhook_id, price="10000", take_profit_ladder=ladder)
    orders_queue.delete("orders")
    first_id = protect_entry(entry_id, sender())
    assert protect_entry(entry_id, sender()) is None  # once
    rungs = sorted(_protections(entry_id), key=lambda o: o.id)
    assert [(o.type, o.quantity, o.price, o.stop_price) for o in rungs] == [
        ("limit", Decimal("0.00499"), Decimal("10200"), None),
        ("limit", Decimal("0.00500"), Decimal("10500"), None),
    ]
    assert rungs[0].id == first_id and rungs[0].ladder_group == rungs[1].ladder_group == f"ladder:{entry_id}"
    assert orders_queue.llen("orders") == 2
    with new_session() as session:
        assert session.get(WebhookAlert, alert_id).order_ids == [entry_id, *(o.id for o in rungs)]


def test_a_ladder_with_a_stop_loss_carries_its_share_of_the_stop_on_each_rung(make_user, broker_of, webhook_of):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    ladder = [{"pct": "2", "size_pct": "50"}, {"pct": "4", "size_pct": "50"}]
    _, entry_id = _filled_entry(webhook_id, price="10000", stop_loss="9500", take_profit_ladder=ladder)
    protect_entry(entry_id, sender())
    rungs = sorted(_protections(entry_id), key=lambda o: o.id)
    assert [(o.type, o.price, o.stop_price) for o in rungs] == [
        ("oco", Decimal("10200"), Decimal("9500")),
        ("oco", Decimal("10400"), Decimal("9500")),
    ]
    assert sum(o.quantity for o in rungs) == Decimal("0.00999")


def test_a_rung_below_the_venues_minimum_is_refused_visibly_and_nothing_is_sent(
    make_user, broker_of, webhook_of, orders_queue
):
    webhook_id = _webhook(make_user, broker_of, webhook_of)
    ladder = [{"pct": "2", "size_pct": "99"}, {"pct": "4", "size_pct": "1"}]
    _, entry_id = _filled_entry(webhook_id, price="10000", take_profit_ladder=ladder)
    orders_queue.delete("orders")
    protect_entry(entry_id, sender())
    [refused] = _protections(entry_id)
    assert (
        refused.state == "rejected" and "rung 2 (1 % = 0.0001 BTC at 10400) is worth 1.04 USDT" in refused.error_message
    )
    assert "below the BTCUSDT minimum of 5 USDT" in refused.error_message
    assert orders_queue.llen("orders") == 0
