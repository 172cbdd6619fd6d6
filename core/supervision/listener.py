"""The supervisord event listener (`[eventlistener:supervision]` of the generated configuration): every
process exit and restart becomes one JSON log event, the record the System page shows, and for the admins
a "process restarted" or "crash loop" notification.

Run by supervisord as `python -m core.supervision.listener SUPERVISORD_LOG RECORD_FILE`; it speaks the
listener protocol on stdin/stdout, so it logs to stderr only."""

from __future__ import annotations

import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from supervisor import childutils

from core.infra.migrate import wait_for_schema
from core.notifications import events
from core.supervision.record import ProcessRecord, load, save

log = logging.getLogger("supervision")
LISTENER = "supervision"
_TAIL_BYTES = 64 * 1024
NOTIFY_PATIENCE_S = 3600.0


def exit_reason(supervisord_log: Path, name: str) -> tuple[int | None, str]:
    """Exit code (None when killed by a signal) and reason of the last exit of `name`, as supervisord logged
    it just before it sent the event: `exited: feeds (terminated by SIGKILL; not expected)`."""
    try:
        with supervisord_log.open("rb") as handle:
            handle.seek(max(0, supervisord_log.stat().st_size - _TAIL_BYTES))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return None, "unknown (supervisord log unreadable)"
    found = re.findall(rf"exited: {re.escape(name)} \((.*?)(?:; (?:not )?expected)?\)\s*$", tail, re.MULTILINE)
    if not found:
        return None, "could not start (see the supervisord log)"
    reason = found[-1]
    code = re.fullmatch(r"exit status (\d+)", reason)
    return (int(code.group(1)) if code else None), reason


def handle(
    records: dict[str, ProcessRecord], event: str, headers: dict[str, str], supervisord_log: Path, now: float
) -> str | None:
    """Apply one PROCESS_STATE_* event; returns the name of the notification to send, if any."""
    name = headers["processname"]
    state = event.removeprefix("PROCESS_STATE_")
    record = records.setdefault(name, ProcessRecord())
    record.state = state
    if state == "STARTING" and headers.get("from_state") in ("BACKOFF", "EXITED"):
        record.restarts += 1
    elif state == "RUNNING":
        record.fatal = False
    elif state in ("EXITED", "BACKOFF"):
        code, reason = exit_reason(supervisord_log, name)
        record.exited(code, reason, now)
        expected = headers.get("expected") == "1"
        level = logging.INFO if expected else logging.WARNING
        event_name = "process_exited" if state == "EXITED" else "process_failed_to_start"
        log.log(
            level,
            event_name,
            extra={
                "process_name": name,
                "exit_code": code,
                "reason": reason,
                "expected": expected,
                "restarts": record.restarts,
                "crash_loop": record.crash_loop,
            },
        )
        return "restarted" if state == "EXITED" and not expected else None
    elif state == "FATAL":
        record.fatal = True
        log.error(
            "process_crash_loop",
            extra={
                "process_name": name,
                "exit_code": record.last_exit_code,
                "reason": record.last_exit_reason,
                "restarts": record.restarts,
                "note": "supervisord gave up restarting it",
            },
        )
        return "crash_loop"
    return None


def notify(kind: str, name: str, record: ProcessRecord) -> None:
    """Tell the admins, in the background: a crash loop at start usually comes before the database is up
    (or the database itself is what died), so the notification waits for it rather than being lost."""
    send = events.process_exited if kind == "restarted" else events.process_crash_loop
    threading.Thread(target=_when_database_ready, args=(send, name, record.last_exit_reason), daemon=True).start()


def _when_database_ready(send: Callable[[str, str], None], name: str, reason: str) -> None:
    try:
        wait_for_schema(NOTIFY_PATIENCE_S)
    except TimeoutError as exc:
        log.error("process_notification_not_sent", extra={"process_name": name, "error": str(exc)})
        return
    send(name, reason)


def main(argv: list[str]) -> int:
    from core.infra.logs import setup_logging

    setup_logging(LISTENER)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # supervisord's stop, the last of all: a clean exit
    supervisord_log, record_file = Path(argv[0]), Path(argv[1])
    records = load(record_file)
    while (received := next_event()) is not None:
        event, body = received
        if event.startswith("PROCESS_STATE_") and body.get("processname") != LISTENER:
            try:
                kind = handle(records, event, body, supervisord_log, time.time())
                save(record_file, records)
                if kind:
                    notify(kind, body["processname"], records[body["processname"]])
            except Exception:  # noqa: BLE001 - one bad event (a full disk) must not stop the listener
                log.exception("supervision_event_not_recorded", extra={"event": event, "payload": body})
        childutils.listener.ok(sys.stdout)
    return 0  # supervisord closed our stdin: it is stopping


def next_event() -> tuple[str, dict[str, str]] | None:
    """Tell supervisord we are ready, read one event: its name and its payload's fields (None at the end)."""
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        return None
    headers = childutils.get_headers(line)
    return headers["eventname"], childutils.get_headers(sys.stdin.read(int(headers["len"])))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
