"""Our own cancels, marked before the venue hears them: a cancel reconciliation finds on a protective
exit is the trader's (made at the venue) only if we never asked for it (core.venue_exits)."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.infra.bus import cancel_requested, get_redis
from core.models import VenueAnswer

log = logging.getLogger(__name__)
KEPT_S = 7 * 24 * 3600  # past this our cancel is in the order's answers anyway


def mark_cancel_requested(order_id: int) -> None:
    try:
        get_redis().set(cancel_requested(order_id), "1", ex=KEPT_S)
    except RedisError:  # the cancel answer we store right after still tells
        log.warning("cancel_mark_not_set", extra={"order_id": order_id})


def cancel_was_requested(session: Session, order_id: int) -> bool:
    """We asked the venue to cancel this order: marked before asking, or its cancel answer is kept."""
    try:
        if get_redis().exists(cancel_requested(order_id)):
            return True
    except RedisError:
        pass
    answered = select(VenueAnswer.id).where(VenueAnswer.order_id == order_id, VenueAnswer.kind == "cancel").limit(1)
    return session.scalar(answered) is not None
