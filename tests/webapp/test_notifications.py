"""The notification centre and the channel settings, through the real app."""

from __future__ import annotations

import requests

from core.infra.db import new_session
from core.models import NotificationChannel
from core.notifications import notify
from tests.conftest import csrf_token_from
from tests.notification_support import json_endpoint


def _token(client, path: str = "/notifications/") -> str:
    return csrf_token_from(client.get(path).get_data(as_text=True))


def test_the_bell_shows_the_unread_count_on_every_page(client, logged_in):
    notify(logged_in.id, "warning", "bot", "Bot paused")
    notify(logged_in.id, "error", "order", "Order rejected")
    for path in ("/", "/trading/", "/bots/", "/notifications/"):
        html = client.get(path).get_data(as_text=True)
        assert 'id="bell-count"' in html and 'data-unread="2"' in html, path
        assert 'sse-connect="/notifications/stream"' in html


def test_the_list_filters_and_marks_read(client, logged_in):
    bot = notify(logged_in.id, "warning", "bot", "Bot paused", "ValueError: bad size (line 12)", "/bots/7")
    order = notify(logged_in.id, "error", "order", "Order rejected", link="/trading/orders/3")
    page = client.get("/notifications/?source=bot").get_data(as_text=True)
    assert "Bot paused" in page and "ValueError: bad size (line 12)" in page and "Order rejected" not in page
    page = client.get("/notifications/?severity=error").get_data(as_text=True)
    assert "Order rejected" in page and "Bot paused" not in page
    assert f'href="/notifications/open/{bot}"' in client.get("/notifications/").get_data(as_text=True)
    opened = client.get(f"/notifications/open/{bot}")
    assert opened.status_code == 302 and opened.headers["Location"] == "/bots/7"
    assert 'data-unread="1"' in client.get("/notifications/").get_data(as_text=True)
    client.post("/notifications/read", data={"all": "1", "csrf_token": _token(client)})
    page = client.get("/notifications/?unread=1").get_data(as_text=True)
    assert 'data-unread="0"' in page and "Order rejected" not in page
    assert order


def test_someone_elses_notification_is_not_found(client, logged_in, make_user):
    stranger, _ = make_user()
    theirs = notify(stranger.id, "info", "system", "not yours", link="/bots/1")
    assert client.get(f"/notifications/open/{theirs}").status_code == 404
    assert "not yours" not in client.get("/notifications/").get_data(as_text=True)


def test_channels_are_added_tested_and_removed(client, logged_in):
    with json_endpoint() as endpoint:
        token = _token(client, "/notifications/settings")
        added = client.post(
            "/notifications/channels",
            data={"label": "my hook", "url": endpoint.url, "min_severity": "warning", "csrf_token": token},
        )
        assert added.status_code == 302
        page = client.get("/notifications/settings").get_data(as_text=True)
        assert "my hook" in page and endpoint.token not in page and "json://…" in page
        with new_session() as session:
            channel = session.query(NotificationChannel).filter_by(user_id=logged_in.id).one()
        tested = client.post(
            f"/notifications/channels/{channel.id}/test", data={"csrf_token": token}, follow_redirects=True
        ).get_data(as_text=True)
        assert "Test sent to my hook." in tested
        assert endpoint.wait_for(1)[0]["title"] == "Aristobot test"
    client.post(
        f"/notifications/channels/{channel.id}/severity", data={"min_severity": "critical", "csrf_token": token}
    )  # the "on" box unticked: switched off
    refused = client.post(
        f"/notifications/channels/{channel.id}/severity",
        data={"min_severity": "loud", "enabled": "1", "csrf_token": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "minimum severity must be one of info, warning, error, critical" in refused
    with new_session() as session:
        changed = session.get(NotificationChannel, channel.id)
        assert (changed.min_severity, changed.enabled) == ("critical", False)
    client.post(f"/notifications/channels/{channel.id}/delete", data={"csrf_token": token})
    assert "my hook" not in client.get("/notifications/settings").get_data(as_text=True)


def test_a_malformed_url_gets_a_clear_error_and_is_not_echoed(client, logged_in):
    token = _token(client, "/notifications/settings")
    answer = client.post(
        "/notifications/channels",
        data={"label": "bad", "url": "tgram://secret-ish-value/", "min_severity": "info", "csrf_token": token},
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "Apprise does not understand this URL" in page
    assert "secret-ish-value" not in page


def test_someone_elses_channel_cannot_be_tested_or_removed(client, logged_in, make_user):
    from core.notifications.channels import NewChannel, add

    stranger, _ = make_user()
    theirs = add(stranger.id, NewChannel(label="theirs", url="ntfy://their-topic"))
    token = _token(client, "/notifications/settings")
    assert client.post(f"/notifications/channels/{theirs}/test", data={"csrf_token": token}).status_code == 404
    assert client.post(f"/notifications/channels/{theirs}/delete", data={"csrf_token": token}).status_code == 404


def test_the_stream_sends_the_bell_at_once_and_on_each_notification(live_server, make_user):
    user, password = make_user()
    http = requests.Session()
    token = csrf_token_from(http.get(f"{live_server}/login").text)
    http.post(f"{live_server}/login", data={"username": user.username, "password": password, "csrf_token": token})
    with http.get(f"{live_server}/notifications/stream", stream=True, timeout=10) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        lines = stream.iter_lines(decode_unicode=True)
        first = []
        while not (first and first[-1].startswith("data:")):  # the retry frame, then the first event
            first.append(next(lines))
        assert "event: unread" in first and 'data-unread="0"' in first[-1]
        notify(user.id, "critical", "arb", "Kill switch")
        data = next(line for line in lines if line.startswith("data:"))
        assert 'data-unread="1"' in data
