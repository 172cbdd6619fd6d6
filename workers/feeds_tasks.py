"""Market-data loading as Celery tasks (started from the Market data page), with live progress, and
the beat's stale-feed watchdog.

Loading is idempotent (rows already stored are skipped), so a redelivery after a worker crash is harmless;
an import stores all its rows or none.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from celery import current_app, shared_task

from core import tasks
from core.bots.source import notify_stale_sources
from core.candles.csv_io import CandleFileError
from core.candles.health import stale_feeds
from core.candles.loading import ImportRefused, LoadError, LoadReport, download_candles, import_candles_text
from core.exchanges.errors import ExchangeError
from core.notifications import events as notifications

log = logging.getLogger(__name__)
BAD_ROWS_SHOWN = 200
WATCHDOG_EVERY_S = 30.0


def _result(report: LoadReport | None, error: str | None = None) -> dict:
    if report is None:
        return {"report": None, "error": error}
    body = report.as_dict()
    body["bad_rows_total"] = len(body["bad_rows"])
    body["bad_rows"] = body["bad_rows"][:BAD_ROWS_SHOWN]
    body["gaps"] = body["gaps"][:BAD_ROWS_SHOWN]
    return {"report": body, "error": error}


def _progress(task):
    def report(done: int, total: int, what: str) -> None:
        task.update_state(state="PROGRESS", meta={"done": done, "total": total, "what": what})

    return report


@shared_task(name=tasks.IMPORT_CANDLES, bind=True, acks_late=True, track_started=True)
def import_candles(self, path: str, venue: str, symbol: str, timeframe: str, source: str = "upload.csv") -> dict:
    file = Path(path)
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        return _result(None, f"{source}: cannot read the uploaded file ({getattr(exc, 'strerror', None) or exc})")
    try:
        report = import_candles_text(
            text, venue=venue, symbol=symbol, timeframe=timeframe, source=source, progress=_progress(self)
        )
    except ImportRefused as refused:  # nothing stored: the report lists the refused rows
        return _result(refused.report, str(refused))
    except (LoadError, CandleFileError) as exc:
        return _result(None, str(exc))
    finally:
        with contextlib.suppress(OSError):
            file.unlink()
    return _result(report)


@shared_task(name=tasks.DOWNLOAD_CANDLES, bind=True, acks_late=True, track_started=True)
def download_candles_task(self, venue: str, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> dict:
    try:
        report = download_candles(venue, symbol, timeframe, start_ms, end_ms, progress=_progress(self))
    except (LoadError, ExchangeError) as exc:
        return _result(None, str(exc))
    return _result(report)


@shared_task(name=tasks.WATCH_FEEDS, acks_late=True, ignore_result=True)
def watch_feeds() -> list[dict]:
    """Alert (a warning log line per stale feed) when a subscribed symbol has gone quiet, and notify the owners
    of running bots whose signal source delivered no candle for two periods."""
    stale = stale_feeds()
    for feed in stale:
        log.warning("feed_stale_alert", extra=feed)
    # Also from here: a source venue never reached has no event loop of its own that would tell.
    for venue in sorted({feed["venue"] for feed in stale}):
        notifications.feed_stale(venue, [feed["symbol"] for feed in stale if feed["venue"] == venue])
    notify_stale_sources()
    return stale


@current_app.on_after_configure.connect
def _schedule(sender, **_kwargs) -> None:
    sender.add_periodic_task(WATCHDOG_EVERY_S, watch_feeds.s(), name="stale-feed-watchdog")
