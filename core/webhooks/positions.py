"""A webhook's orders (those its alerts recorded); the position they hold is the ledger's
(core.ledger.positions.net_position)."""

from __future__ import annotations

from sqlalchemy import BindParameter, Select, func, select

from core.models import Order, WebhookAlert


def webhook_orders(webhook_id: int | BindParameter[int]) -> Select[Order]:
    """Orders recorded for this webhook's alerts (source_ref holds the alert id)."""
    alert_ids = select(func.cast(WebhookAlert.id, Order.source_ref.type)).where(WebhookAlert.webhook_id == webhook_id)
    return select(Order).where(Order.source == "webhook", Order.source_ref.in_(alert_ids))
