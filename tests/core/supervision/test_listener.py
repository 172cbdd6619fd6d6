"""The supervisord event listener: each exit becomes one JSON event and a record with its reason; a crash
loop is flagged; it speaks supervisord's listener protocol."""

from __future__ import annotations

import json
import subprocess
import sys

from core.supervision.listener import exit_reason, handle
from core.supervision.record import CRASH_LOOP_EXITS, load, read_supervision, save
from tests.conftest import ROOT

SUPERVISORD_LOG = """\
2026-12-07 12:06:15,186 WARN exited: feeds (terminated by SIGKILL; not expected)
2026-12-07 12:06:16,739 WARN exited: feeds2 (exit status 1; not expected)
2026-12-07 12:07:00,297 INFO exited: crasher (exit status 3; not expected)
"""


def test_exit_reason_from_supervisord_log(tmp_path):
    log = tmp_path / "supervisord.log"
    log.write_text(SUPERVISORD_LOG)
    assert exit_reason(log, "feeds") == (None, "terminated by SIGKILL")
    assert exit_reason(log, "crasher") == (3, "exit status 3")
    assert exit_reason(log, "web") == (None, "could not start (see the supervisord log)")
    assert exit_reason(tmp_path / "missing.log", "feeds")[1] == "unknown (supervisord log unreadable)"


def test_kill_restart_and_crash_loop_records(tmp_path, caplog):
    log = tmp_path / "supervisord.log"
    log.write_text(SUPERVISORD_LOG)
    records: dict = {}
    assert handle(records, "PROCESS_STATE_EXITED", {"processname": "feeds", "expected": "0"}, log, 100.0) == (
        "restarted"
    )
    handle(records, "PROCESS_STATE_STARTING", {"processname": "feeds", "from_state": "EXITED"}, log, 101.0)
    handle(records, "PROCESS_STATE_RUNNING", {"processname": "feeds", "from_state": "STARTING"}, log, 106.0)
    feeds = records["feeds"]
    assert (feeds.state, feeds.restarts, feeds.last_exit_reason, feeds.crash_loop) == (
        "RUNNING",
        1,
        "terminated by SIGKILL",
        False,
    )
    event = next(r for r in caplog.records if r.getMessage() == "process_exited")
    assert (event.process_name, event.reason, event.expected) == ("feeds", "terminated by SIGKILL", False)

    for now in range(3):  # fails at every start: BACKOFF, retried, then FATAL
        handle(records, "PROCESS_STATE_STARTING", {"processname": "crasher", "from_state": "BACKOFF"}, log, now)
        assert handle(records, "PROCESS_STATE_BACKOFF", {"processname": "crasher"}, log, now) is None
    assert handle(records, "PROCESS_STATE_FATAL", {"processname": "crasher"}, log, 4.0) == "crash_loop"
    crasher = records["crasher"]
    assert (crasher.state, crasher.last_exit_code, crasher.fatal, crasher.crash_loop) == ("FATAL", 3, True, True)
    assert any(r.getMessage() == "process_crash_loop" and r.levelname == "ERROR" for r in caplog.records)


def test_a_process_dying_again_and_again_after_start_is_a_crash_loop_too(tmp_path):
    log = tmp_path / "supervisord.log"
    log.write_text(SUPERVISORD_LOG)
    records: dict = {}
    for now in range(CRASH_LOOP_EXITS):
        handle(records, "PROCESS_STATE_EXITED", {"processname": "feeds2", "expected": "0"}, log, 60.0 * now)
    assert records["feeds2"].crash_loop and not records["feeds2"].fatal
    handle(records, "PROCESS_STATE_EXITED", {"processname": "feeds2", "expected": "0"}, log, 5000.0)
    assert not records["feeds2"].crash_loop  # the old exits left the window


def test_record_file_round_trip_and_garbage(tmp_path):
    records: dict = {}
    log = tmp_path / "supervisord.log"
    log.write_text(SUPERVISORD_LOG)
    handle(records, "PROCESS_STATE_EXITED", {"processname": "feeds", "expected": "0"}, log, 1796645369.0)
    save(tmp_path / "supervision.json", records)
    assert (tmp_path / "supervision.json").stat().st_mode & 0o077 == 0
    shown = read_supervision(tmp_path)["feeds"]
    assert shown["last_exit_utc"] == "2026-12-07 12:09:29 UTC" and shown["crash_loop"] is False
    (tmp_path / "supervision.json").write_text("{not json")
    assert load(tmp_path / "supervision.json") == {} and read_supervision(tmp_path / "nowhere") == {}


def test_listener_speaks_supervisord_protocol(tmp_path):
    (tmp_path / "supervisord.log").write_text(SUPERVISORD_LOG)
    events = [
        ("PROCESS_STATE_STARTING", "processname:web groupname:services from_state:STOPPED tries:0"),
        ("PROCESS_STATE_RUNNING", "processname:web groupname:services from_state:STARTING pid:42"),
        ("PROCESS_STATE_EXITED", "processname:crasher groupname:services from_state:RUNNING expected:1 pid:43"),
        ("TICK_5", "when:1796645369"),
    ]
    stdin = "".join(
        f"ver:3.0 server:supervisor serial:{i} pool:supervision poolserial:{i} eventname:{name} len:{len(body)}\n{body}"
        for i, (name, body) in enumerate(events)
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "core.supervision.listener",
            str(tmp_path / "supervisord.log"),
            str(tmp_path / "r.json"),
        ],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "READY\nRESULT 2\nOK" * len(events) + "READY\n"
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["web"]["state"] == "RUNNING" and record["crasher"]["last_exit_reason"] == "exit status 3"
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [(e["event"], e["context"]["process_name"]) for e in logged] == [("process_exited", "crasher")]
