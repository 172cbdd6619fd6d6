"""Apprise URLs are hostile input: parsed by Apprise, held to the outbound rule, stored only encrypted."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from core.infra.db import new_session
from core.models import NotificationChannel
from core.notifications import channels
from tests.notification_support import json_endpoint


@pytest.mark.parametrize(
    "url, reason",
    [
        ("", "one line"),
        ("just words", "one line"),
        ("example.com/hook", "starts with its service"),
        ("nosuchservice://host/path", "does not understand"),
        ("tgram://not-a-token/", "does not understand"),
        ("json://10.1.2.3/hook", "is refused"),  # private network, not in security.allowed_networks
        ("json://167837953/hook", "is refused"),  # 10.1.2.1 written as one number
        ("form://169.254.169.254/latest/meta-data", "is refused"),  # cloud metadata
    ],
)
def test_a_bad_url_is_refused_with_a_clear_line(make_user, url, reason):
    user, _ = make_user()
    with pytest.raises(channels.InvalidChannel, match=reason) as refused:
        channels.add(user.id, channels.NewChannel(label="phone", url=url))
    if len(url) > 8:
        assert url not in str(refused.value)


def test_the_url_is_stored_encrypted_and_shown_masked(make_user):
    user, _ = make_user()
    url = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234567"
    channel_id = channels.add(user.id, channels.NewChannel(label="phone", url=url, min_severity="error"))
    with new_session() as session:
        raw = session.execute(
            text("SELECT url_enc FROM notification_channels WHERE id = :id"), {"id": channel_id}
        ).scalar_one()
        channel = session.get(NotificationChannel, channel_id)
        assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in raw and channel.url() == url
        assert channel.masked_url == "tgram://…67"
        assert channel.wants("critical") and channel.wants("error") and not channel.wants("warning")


def test_send_a_test_reaches_a_real_endpoint(make_user):
    user, _ = make_user()
    with json_endpoint() as endpoint:
        channel_id = channels.add(user.id, channels.NewChannel(label="hook", url=endpoint.url))
        outcome = channels.send_test(user.id, channel_id)
        received = endpoint.wait_for(1)
    assert outcome.ok and outcome.error is None
    assert received[0]["title"] == "Aristobot test" and received[0]["path"] == f"/{endpoint.token}"


def test_a_refusing_endpoint_is_reported_without_its_url(make_user):
    user, _ = make_user()
    with json_endpoint(status=500) as endpoint:
        channel_id = channels.add(user.id, channels.NewChannel(label="hook", url=endpoint.url))
        outcome = channels.send_test(user.id, channel_id)
    assert not outcome.ok and outcome.error and endpoint.token not in outcome.error
    with new_session() as session:
        channel = session.get(NotificationChannel, channel_id)
        assert channel.last_error == outcome.error and channel.last_attempt_at is not None


def test_someone_elses_channel_is_not_found(make_user):
    owner, _ = make_user()
    stranger, _ = make_user()
    channel_id = channels.add(owner.id, channels.NewChannel(label="p", url="ntfy://aristobot-topic"))
    with pytest.raises(LookupError):
        channels.send_test(stranger.id, channel_id)
    with pytest.raises(LookupError):
        channels.remove(stranger.id, channel_id)
