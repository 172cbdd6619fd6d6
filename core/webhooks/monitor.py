"""MISS detection over stored alerts, pausing after three misses in a row, and the reliability numbers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core.infra.db import utcnow
from core.models import Order, OrderEvent, Webhook, WebhookAlert, WebhookExpectation
from core.notifications import events as notifications
from core.percentiles import percentile
from core.webhooks.cadence import MISSES_BEFORE_PAUSE, evaluate_periods, grace_for, misses_in_a_row
from core.webhooks.setup import pause_webhook

log = logging.getLogger(__name__)

ACK_STATES = ("open", "partially_filled", "filled")


def check_webhook(session: Session, webhook: Webhook, now: datetime | None = None) -> list[WebhookExpectation]:
    """Judge the periods of `webhook` that closed (with grace) since the last check; pause on 3 misses."""
    now = now or utcnow()
    if not webhook.cadence or webhook.paused or webhook.cadence_from is None:
        return []
    start = webhook.evaluated_until or webhook.cadence_from
    alerts = session.execute(
        select(WebhookAlert.id, WebhookAlert.received_at).where(
            WebhookAlert.webhook_id == webhook.id, WebhookAlert.status == "accepted", WebhookAlert.received_at >= start
        )
    ).all()
    used = {
        alert_id
        for alert_id in session.scalars(
            select(WebhookExpectation.alert_id).where(
                WebhookExpectation.webhook_id == webhook.id,
                WebhookExpectation.alert_id.is_not(None),
                WebhookExpectation.period_end >= start,
            )
        )
        if alert_id is not None
    }
    outcomes = evaluate_periods(
        start,
        now,
        webhook.cadence,
        grace_for(webhook.cadence, webhook.grace_seconds),
        [(row.id, row.received_at) for row in alerts],
        used,
    )
    rows = [
        WebhookExpectation(
            webhook_id=webhook.id, period_start=o.start, period_end=o.end, outcome=o.outcome, alert_id=o.alert_id
        )
        for o in outcomes
    ]
    session.add_all(rows)
    if not outcomes:
        return rows
    webhook.evaluated_until = outcomes[-1].end
    webhook.consecutive_misses = misses_in_a_row(webhook.consecutive_misses, outcomes)
    for row in rows:
        if row.outcome == "miss":
            log.warning(
                "webhook_alert_missed",
                extra={
                    "webhook_id": webhook.id,
                    "user_id": webhook.user_id,
                    "period_start": row.period_start.isoformat(),
                },
            )
            notifications.webhook_missed(webhook.user_id, webhook.id, webhook.name, row.period_start)
    if webhook.consecutive_misses >= MISSES_BEFORE_PAUSE:
        reason = (
            f"{webhook.consecutive_misses} expected alerts missed in a row "
            f"(last expected by {outcomes[-1].end:%Y-%m-%d %H:%M} UTC)"
        )
        pause_webhook(webhook, reason)
        notifications.webhook_paused(webhook.user_id, webhook.id, webhook.name, reason)
    return rows


def check_all(session: Session, now: datetime | None = None) -> int:
    """One pass of the beat task over every active webhook with a cadence. Returns periods judged."""
    webhooks = session.scalars(
        select(Webhook).where(Webhook.cadence.is_not(None), Webhook.paused.is_(False)).with_for_update(skip_locked=True)
    )
    return sum(len(check_webhook(session, webhook, now)) for webhook in webhooks)


@dataclass(frozen=True)
class Reliability:
    hits: int
    lates: int
    misses: int
    received: int
    accepted: int
    rejected: int
    duplicates: int
    ack_p50_ms: float | None
    ack_p99_ms: float | None

    @property
    def expected(self) -> int:
        return self.hits + self.lates + self.misses

    def rate(self, count: int) -> float | None:
        return count / self.expected if self.expected else None


def ack_latencies_ms(session: Session, alert_ids_query: Select[int]) -> list[float]:
    """Receive-to-venue-ack: from the alert's arrival to its order's first live state at the venue."""
    first_ack = (
        select(OrderEvent.order_id, func.min(OrderEvent.at).label("at"))
        .where(OrderEvent.to_state.in_(ACK_STATES))
        .group_by(OrderEvent.order_id)
        .subquery()
    )
    rows = session.execute(
        select(WebhookAlert.received_at, first_ack.c.at)
        .join(Order, Order.source_ref == func.cast(WebhookAlert.id, Order.source_ref.type))
        .join(first_ack, first_ack.c.order_id == Order.id)
        .where(
            Order.source == "webhook",
            Order.oco_group.is_(None),  # entries only, not their protection
            WebhookAlert.id.in_(alert_ids_query),
        )
    ).all()
    return [(acked - received).total_seconds() * 1000 for received, acked in rows]


def reliability(session: Session, webhook: Webhook) -> Reliability:
    outcomes = dict(
        session.execute(
            select(WebhookExpectation.outcome, func.count())
            .where(WebhookExpectation.webhook_id == webhook.id)
            .group_by(WebhookExpectation.outcome)
        ).all()
    )
    statuses = dict(
        session.execute(
            select(WebhookAlert.status, func.count())
            .where(WebhookAlert.webhook_id == webhook.id)
            .group_by(WebhookAlert.status)
        ).all()
    )
    latencies = ack_latencies_ms(session, select(WebhookAlert.id).where(WebhookAlert.webhook_id == webhook.id))
    return Reliability(
        hits=outcomes.get("hit", 0),
        lates=outcomes.get("late", 0),
        misses=outcomes.get("miss", 0),
        received=sum(statuses.values()),
        accepted=statuses.get("accepted", 0),
        rejected=statuses.get("rejected", 0),
        duplicates=statuses.get("duplicate", 0),
        ack_p50_ms=percentile(latencies, 0.5),
        ack_p99_ms=percentile(latencies, 0.99),
    )


def timeline(session: Session, webhook: Webhook, limit: int = 120) -> list[WebhookExpectation]:
    return list(
        reversed(
            session.scalars(
                select(WebhookExpectation)
                .where(WebhookExpectation.webhook_id == webhook.id)
                .order_by(WebhookExpectation.period_start.desc())
                .limit(limit)
            ).all()
        )
    )


def request_log(
    session: Session, webhook: Webhook, limit: int = 200, before_id: int | None = None
) -> list[WebhookAlert]:
    query = select(WebhookAlert).where(WebhookAlert.webhook_id == webhook.id)
    if before_id:
        query = query.where(WebhookAlert.id < before_id)
    return list(session.scalars(query.order_by(WebhookAlert.id.desc()).limit(limit)))


def orders_by_alert(session: Session, alerts: list[WebhookAlert]) -> dict[int, list[Order]]:
    """The orders each alert made, entries first then their stop-loss / take-profit, for the request log."""
    ids = [alert.id for alert in alerts if alert.order_ids]
    if not ids:
        return {}
    orders = session.scalars(
        select(Order).where(Order.source == "webhook", Order.source_ref.in_([str(i) for i in ids])).order_by(Order.id)
    )
    found: dict[int, list[Order]] = {}
    for order in orders:
        if order.source_ref is not None:  # always: selected by it
            found.setdefault(int(order.source_ref), []).append(order)
    return found
