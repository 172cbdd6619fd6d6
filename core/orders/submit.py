"""Entry point of every order (manual ticket, webhook, bot): record first, then hand to the `orders` queue."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from core import tasks
from core.exchanges.spot.base import client_order_id_for
from core.models import BrokerConnection, Order
from core.orders.states import OrderState

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OrderIntent:
    """What a user (or a bot, or a webhook) asks for, already validated for shape."""

    broker_id: int
    symbol: str
    side: str
    type: str
    quantity: Decimal | None = None
    quote_quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = "GTC"
    source: str = "manual"
    source_ref: str | None = None
    oco_group: str | None = None
    trail_pct: Decimal | None = None
    ladder_group: str | None = None


def record_order(session: Session, user_id: int, intent: OrderIntent) -> Order:
    """Write the order in state `new` with its client order id; nothing is sent yet."""
    broker = session.get(BrokerConnection, intent.broker_id)
    if broker is None or broker.user_id != user_id:
        raise LookupError("no such broker connection")
    order = Order(
        user_id=user_id,
        broker_id=broker.id,
        symbol=intent.symbol.upper(),
        side=intent.side,
        type=intent.type,
        quantity=intent.quantity,
        quote_quantity=intent.quote_quantity,
        price=intent.price,
        stop_price=intent.stop_price,
        time_in_force=intent.time_in_force,
        state=OrderState.NEW.value,
        source=intent.source,
        source_ref=intent.source_ref,
        oco_group=intent.oco_group,
        trail_pct=intent.trail_pct,
        ladder_group=intent.ladder_group,
        events=[],
    )  # known empty: its first transition appends without loading the history
    session.add(order)
    session.flush()  # assigns the id the client order id is derived from
    order.client_order_id = client_order_id_for(order.id, broker.venue)
    log.info(
        "order_recorded",
        extra={
            "order_id": order.id,
            "user_id": user_id,
            "venue": broker.venue,
            "symbol": order.symbol,
            "source": intent.source,
        },
    )
    return order


def enqueue_placement(celery_app: Celery | None, order_id: int) -> bool:
    """Hand the order to a worker. If the broker is down, the order stays `new` and the recovery sweep
    re-enqueues it; it is never lost and never sent twice (placement is idempotent by order id)."""
    try:
        tasks.send_place_order(order_id, app=celery_app)
        return True
    except Exception as exc:  # noqa: BLE001 - kombu raises many transport errors; all mean "later"
        log.warning("order_enqueue_failed", extra={"order_id": order_id, "error": str(exc)[:200]})
        return False
