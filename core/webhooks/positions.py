"""A webhook's orders (those its alerts recorded) and the position they hold, from our fill ledger."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core.models import Fill, Order, SymbolRule, Webhook, WebhookAlert
from core.pnl.fills import TradeFill, net_quantity


def webhook_orders(webhook_id: int) -> Select[Order]:
    """Orders recorded for this webhook's alerts (source_ref holds the alert id)."""
    alert_ids = select(func.cast(WebhookAlert.id, Order.source_ref.type)).where(WebhookAlert.webhook_id == webhook_id)
    return select(Order).where(Order.source == "webhook", Order.source_ref.in_(alert_ids))


def net_position(session: Session, webhook: Webhook, symbol: str) -> Decimal:
    """Bought minus sold, from our fill ledger, over the orders this webhook placed on `symbol`.

    A fee the venue took in the base asset (a buy's commission) is not held either: closing or
    protecting must not try to sell it."""
    orders = webhook_orders(webhook.id).where(Order.symbol == symbol).with_only_columns(Order.id)
    base = session.scalar(
        select(SymbolRule.base).where(SymbolRule.broker_id == webhook.broker_id, SymbolRule.symbol == symbol)
    )
    fills = session.execute(
        select(Fill.side, Fill.quantity, Fill.price, Fill.fee, Fill.fee_asset).where(Fill.order_id.in_(orders))
    ).all()
    return net_quantity((TradeFill(*row) for row in fills), base or None)
