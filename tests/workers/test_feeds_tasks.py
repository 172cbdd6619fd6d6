import logging
import time

from core.infra.liveness import write_liveness
from workers.feeds_tasks import watch_feeds


def test_watchdog_alerts_on_a_quiet_feed_and_not_on_a_live_one(redis_client, caplog):
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
    assert [r.getMessage() for r in caplog.records] == ["feed_stale_alert"]


def test_watchdog_is_silent_when_the_feeds_process_is_not_running(redis_client):
    assert watch_feeds() == []
