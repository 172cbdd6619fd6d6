"""`aristobot bench notify` against the real web app: every page receives every notification."""

from __future__ import annotations

from bench.notify import run


def test_every_page_receives_every_notification(live_server):
    result = run(live_server, pages=2, events=30)
    assert result.received == 60
    assert 0 < result.page_p50_ms <= result.page_p99_ms <= result.page_max_ms
