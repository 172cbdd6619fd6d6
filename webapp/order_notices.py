"""What the trader is told once an order they asked for is queued, and the one-use confirmation that keeps a
double click, a resubmitted form or a second tab from sending it twice (the ticket's and the position closes')."""

from __future__ import annotations

import logging

from flask_login import current_user
from redis.exceptions import RedisError

from core.infra.bus import get_redis, ticket_confirmation
from core.orders.outcome import await_venue

log = logging.getLogger(__name__)
CONFIRMATION_TTL_S = 24 * 3600


def submitted_notice(order_id: int, queued: bool) -> tuple[str, str]:
    """What the venue said, when it says it within a moment; never "submitted" for a refused order."""
    if not queued:
        return f"Order #{order_id} recorded; the queue is unavailable, it will be sent as soon as it is back.", "error"
    outcome = await_venue(order_id)
    if outcome.state in ("rejected", "expired"):
        return f"Order #{order_id} {outcome.state}: {outcome.error or 'no reason given'}", "error"
    if outcome.watched:
        return (
            f"Order #{order_id} recorded: this venue has no trailing stop, so Aristobot watches the price and "
            "sells (buys) at market once it crosses the trail.",
            "success",
        )
    if not outcome.answered:
        return f"Order #{order_id} submitted; the venue has not answered yet, its state updates below.", "success"
    return f"Order #{order_id} submitted: {outcome.state.replace('_', ' ')}.", "success"


def claim_confirmation(nonce: str) -> bool:
    """A confirmation page places at most one order: a double click, a resubmitted form or a second
    tab replaying it finds its nonce taken. Without Redis nothing can be queued anyway, so it passes."""
    if not nonce:
        return True  # a direct post (scripts, tests) has no confirmation page to replay
    try:
        return bool(get_redis().set(ticket_confirmation(current_user.id, nonce), "1", nx=True, ex=CONFIRMATION_TTL_S))
    except RedisError as exc:
        log.warning("ticket_confirmation_unchecked", extra={"user_id": current_user.id, "error": str(exc)[:200]})
        return True
