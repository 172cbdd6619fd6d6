import logging
import time

from core.infra.liveness import write_liveness
from tests.feeds.conftest import wait_until
from tests.notification_support import notifications_of
from workers.feeds_tasks import watch_feeds


def test_watchdog_alerts_on_a_quiet_feed_and_not_on_a_live_one(infra, redis_client, caplog):  # infra: it reads bots
    now = time.time()
    write_liveness(
        "feeds",
        {
            "venue": "sim",
            "connected": True,
            "stale_after_s": 30,
            "symbols": {"BTCUSDT": {"last_message_ts": now - 2}, "ETHUSDT": {"last_message_ts": now - 95}},
        },
        redis_client,
    )
    with caplog.at_level(logging.WARNING, logger="workers.feeds_tasks"):
        stale = watch_feeds()
    assert [(s["symbol"], s["age_s"] >= 95) for s in stale] == [("ETHUSDT", True)]
    # only the watchdog's own records: another test's Celery app may log in this process meanwhile
    assert [r.getMessage() for r in caplog.records if r.name == "workers.feeds_tasks"] == ["feed_stale_alert"]


def test_watchdog_is_silent_when_the_feeds_process_is_not_running(redis_client):
    assert watch_feeds() == []


def test_a_source_venue_never_reached_is_notified_to_the_admins(redis_client, make_user):
    admin, _ = make_user(is_admin=True)
    now = time.time()
    info = {"venue": "kraken", "connected": False, "stale_after_s": 30, "symbols": {"XBTUSD": {"since_ts": now - 60}}}
    write_liveness("feeds", {**info, "sources": [info]}, redis_client)
    assert [s["symbol"] for s in watch_feeds()] == ["XBTUSD"]
    [notice] = wait_until(lambda: notifications_of(admin.id, "feed"))
    assert notice.title == "Market data stale on kraken: XBTUSD"
