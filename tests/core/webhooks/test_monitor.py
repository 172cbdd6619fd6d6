"""MISS detection against stored alerts: expectations recorded, three misses pause, resume restarts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core.infra.db import new_session, session_scope, utcnow
from core.models import Webhook, WebhookAlert, WebhookExpectation
from core.notifications import events
from core.webhooks import monitor
from core.webhooks.setup import resume_webhook
from tests.notification_support import notifications_of


def _store_alert(webhook_id: int, received_at, status: str = "accepted") -> int:
    with session_scope() as session:
        alert = WebhookAlert(
            webhook_id=webhook_id, received_at=received_at, status=status, http_status=202, body="{}", headers={}
        )
        session.add(alert)
        session.flush()
        return alert.id


def _start_cadence_at(webhook_id: int, start) -> None:
    with session_scope() as session:
        webhook = session.get(Webhook, webhook_id)
        webhook.cadence_from = webhook.evaluated_until = start


def test_three_missed_alerts_pause_the_webhook_and_resume_restarts_the_count(make_user, broker_of, webhook_of):
    user, _ = make_user()
    webhook_id, _ = webhook_of(user, broker_of(user), cadence="1m")
    start = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=10)
    _start_cadence_at(webhook_id, start)
    hit = _store_alert(webhook_id, start + timedelta(seconds=3))
    late = _store_alert(webhook_id, start + timedelta(seconds=60 + 60 + 5))
    _store_alert(webhook_id, start + timedelta(seconds=64), status="rejected")  # refused alerts do not count

    with session_scope() as session:
        webhook = session.get(Webhook, webhook_id)
        rows = monitor.check_webhook(session, webhook, now=start + timedelta(minutes=2, seconds=15))
        assert [(r.outcome, r.alert_id) for r in rows] == [("hit", hit), ("late", late)]
        assert webhook.consecutive_misses == 0 and not webhook.paused
        # Next pass continues where the last stopped; the late alert is not counted again for 10:02.
        rows = monitor.check_webhook(session, webhook, now=start + timedelta(minutes=5, seconds=15))
        assert [r.outcome for r in rows] == ["miss", "miss", "miss"]
        assert webhook.paused and webhook.consecutive_misses == 3
        assert "3 expected alerts missed in a row" in webhook.paused_reason
        assert monitor.check_webhook(session, webhook, now=start + timedelta(minutes=9)) == []  # paused: not judged
        resume_webhook(webhook)
        assert not webhook.paused and webhook.consecutive_misses == 0 and webhook.cadence_from > utcnow()

    with new_session() as session:
        webhook = session.get(Webhook, webhook_id)
        stats = monitor.reliability(session, webhook)
        assert (stats.hits, stats.lates, stats.misses, stats.expected) == (1, 1, 3, 5)
        assert stats.rate(stats.misses) == 0.6
        assert (stats.accepted, stats.rejected) == (2, 1)
        assert [e.outcome for e in monitor.timeline(session, webhook)] == ["hit", "late", "miss", "miss", "miss"]


def test_check_all_judges_only_webhooks_with_a_cadence(make_user, broker_of, webhook_of):
    user, _ = make_user()
    broker_id = broker_of(user)
    with_cadence, _ = webhook_of(user, broker_id, cadence="1m")
    without, _ = webhook_of(user, broker_id)
    _start_cadence_at(with_cadence, utcnow().replace(second=0, microsecond=0) - timedelta(minutes=2))
    with session_scope() as session:
        monitor.check_all(session)
    with new_session() as session:
        judged = set(
            session.scalars(
                select(WebhookExpectation.webhook_id).where(WebhookExpectation.webhook_id.in_([with_cadence, without]))
            )
        )
    assert judged == {with_cadence}


def test_each_miss_and_the_pause_tell_the_trader(make_user, broker_of, webhook_of):
    user, _ = make_user()
    webhook_id, _ = webhook_of(user, broker_of(user), cadence="1m")
    start = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=10)
    _start_cadence_at(webhook_id, start)
    with session_scope() as session:
        webhook = session.get(Webhook, webhook_id)
        monitor.check_webhook(session, webhook, now=start + timedelta(minutes=3, seconds=15))
        name = webhook.name
    told = notifications_of(user.id, "webhook")
    assert [n.title for n in told] == [f"Webhook {name}: an expected alert did not come"] * 3 + [
        f"Webhook {name} paused"
    ]
    assert told[0].body == f"No alert for the period starting {start:%Y-%m-%d %H:%M} UTC."
    assert "3 expected alerts missed in a row" in told[-1].body and told[-1].severity == "error"
    assert {n.link for n in told} == {f"/webhooks/{webhook_id}/reliability"}
    # The same conditions noticed again (another process, a redelivered task) tell nothing new.
    events.webhook_missed(user.id, webhook_id, name, start)
    events.webhook_paused(user.id, webhook_id, name, "3 expected alerts missed in a row")
    assert len(notifications_of(user.id, "webhook")) == 4
