"""What the venue made of an order just submitted, for a page that must not call "submitted" an order
the venue refused: wait a short, bounded time for the pipeline to move it past `new`/`sent`."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from core.infra.db import new_session
from core.models import Order, TrailingWatch
from core.orders.states import OrderState

WAITING = frozenset({OrderState.NEW.value, OrderState.SENT.value})


@dataclass(frozen=True)
class Outcome:
    state: str
    error: str | None
    watched: bool = False  # an emulated trailing stop: Aristobot watches it, the venue has nothing yet

    @property
    def answered(self) -> bool:
        return self.state not in WAITING or self.watched


def await_venue(order_id: int, timeout_s: float = 3.0, poll_s: float = 0.1) -> Outcome:
    """The order's state once the venue has answered, or its state at `timeout_s` (then still waiting)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with new_session() as session:
            state, error, watched = session.execute(
                select(
                    Order.state,
                    Order.error_message,
                    select(TrailingWatch.order_id)
                    .where(TrailingWatch.order_id == Order.id, TrailingWatch.triggered_at.is_(None))
                    .exists(),
                ).where(Order.id == order_id)
            ).one()
        outcome = Outcome(state, error, watched and state == OrderState.NEW.value)
        if outcome.answered or time.monotonic() >= deadline:
            return outcome
        time.sleep(poll_s)
