"""Order events on the user's Redis channel (core.infra.bus.order_events_channel): what the pages (SSE) see
of every committed state change and recorded fill."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from core.infra.bus import get_redis, order_events_channel
from core.infra.db import utcnow
from core.models import Order
from core.notifications import events as notifications

log = logging.getLogger(__name__)


def event_payload(order: Order, from_state: str | None, cause: str) -> dict[str, Any]:
    return {
        "type": "order",
        "order_id": order.id,
        "broker_id": order.broker_id,
        "symbol": order.symbol,
        "side": order.side,
        "order_type": order.type,
        "from": from_state,
        "state": order.state,
        "cause": cause,
        "filled_quantity": str(order.filled_quantity or 0),
        "error": order.error_message,
        "at": utcnow().isoformat(),
    }


def publish(user_id: int, payloads: Iterable[dict[str, Any]]) -> None:
    """Tell the pages (SSE) about committed changes, and the trader about orders that ended badly. Losing a
    message only delays a page refresh."""
    payloads = list(payloads)
    try:
        pipe = get_redis().pipeline(transaction=False)  # one round trip for a step's events
        for payload in payloads:
            pipe.publish(order_events_channel(user_id), json.dumps(payload))
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 - redis-py raises several transport errors; pages also poll
        log.warning("order_event_publish_failed", extra={"user_id": user_id, "error": str(exc)[:200]})
    notifications.order_events(user_id, payloads)
