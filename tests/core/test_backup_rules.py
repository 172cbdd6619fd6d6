"""The backup rules without a database: retention, what /healthz says about backups, the beat's schedule."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.backups.archive import Backup, dump_name, list_backups, manifest_path, write_json
from core.backups.retention import prune, to_keep
from core.backups.status import WATCHED_SINCE, backup_health
from core.infra.config import get_settings


def _backup(folder: Path, when: datetime, ok: bool | None = True) -> Backup:
    dump = folder / dump_name(when)
    dump.write_bytes(b"x")
    manifest = {"created_at": when.isoformat(), "sha256": "0", "size_bytes": 1, "tables": {}, "schema_revision": "r"}
    if ok is not None:
        manifest["verification"] = {"ok": ok, "detail": "", "verified_at": when.isoformat()}
    write_json(manifest_path(dump), manifest)
    return Backup(dump, manifest)


def test_retention_keeps_the_last_days_and_the_first_of_each_month(tmp_path):
    start = datetime(2026, 1, 1, 3, 30, tzinfo=UTC)
    for day in range(120):  # two a day (the daily one and a manual one), for four months
        _backup(tmp_path, start + timedelta(days=day))
        _backup(tmp_path, start + timedelta(days=day, hours=5), ok=day < 100)
    backups = list_backups(tmp_path)
    keep = to_keep(backups, keep_daily=30, keep_monthly=3)
    newest_days = {b.created_at.date() for b in backups[:60]}
    assert len(newest_days) == 30 and all(dump_name(start + timedelta(days=d, hours=5)) in keep for d in range(90, 120))
    # the first of each of the last three months, and the newest verified one (day 99's second)
    assert {dump_name(datetime(2026, m, 1, 3, 30, tzinfo=UTC)) for m in (2, 3, 4)} <= keep
    assert dump_name(start + timedelta(days=99, hours=5)) in keep
    assert dump_name(datetime(2026, 1, 1, 3, 30, tzinfo=UTC)) not in keep
    removed = prune(backups, keep_daily=30, keep_monthly=3)
    assert len(removed) == 240 - len(keep) and {b.dump.name for b in list_backups(tmp_path)} == keep
    assert not manifest_path(tmp_path / removed[0]).exists()


@pytest.fixture()
def backup_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ARISTOBOT_VAR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path / "backups"
    get_settings.cache_clear()


def test_health_is_degraded_only_once_a_good_backup_is_overdue(backup_dir):
    settings = get_settings()
    fresh = backup_health(settings, None)
    assert fresh["ok"] and fresh["status"] == "none yet" and (backup_dir / WATCHED_SINCE).exists()
    day_two = backup_health(settings, None, now=time.time() + 27 * 3600)
    assert not day_two["ok"] and day_two["status"] == "missing"

    now = datetime.now(UTC)
    _backup(backup_dir, now - timedelta(hours=30))
    _backup(backup_dir, now - timedelta(hours=2), ok=False)
    stale = backup_health(settings, None)
    assert not stale["ok"] and stale["status"] == "stale" and "30.0 h old" in stale["detail"]
    assert stale["last"]["verification"]["ok"] is False and stale["last_good"]["age_h"] == 30.0
    _backup(backup_dir, now - timedelta(hours=1))
    good = backup_health(settings, None)
    assert good["ok"] and good["status"] == "ok" and good["last"]["age_h"] == 1.0


def test_health_names_a_backup_directory_it_cannot_use(backup_dir):
    backup_dir.write_text("a file in the way")
    report = backup_health(get_settings(), None)
    assert not report["ok"] and report["status"] == "error" and "is not a directory" in report["detail"]


def test_the_beat_runs_the_daily_backup_on_the_backtester_queue_at_the_configured_time():
    import celeryconfig
    from core import tasks

    entry = celeryconfig.beat_schedule["daily-backup"]
    assert entry["task"] == tasks.DAILY_BACKUP
    hour, minute = get_settings().file.backups.daily_at.split(":")
    assert entry["schedule"].hour == {int(hour)} and entry["schedule"].minute == {int(minute)}
    assert celeryconfig.task_routes["workers.backups.*"] == {"queue": "backtests"}


def test_a_bad_backup_time_stops_start_up_with_the_key_named(tmp_path):
    from core.infra.config import ConfigError, load_settings

    config = tmp_path / "config.yaml"
    config.write_text("backups:\n  daily_at: '7pm'\n")
    with pytest.raises(ConfigError, match=r"backups\.daily_at: String should match pattern"):
        load_settings(config_path=config)


def test_the_password_goes_to_a_private_passfile_only(monkeypatch):
    import os

    from core.backups.pg import Conn, client_env

    monkeypatch.setenv("PGPASSWORD", "inherited-password")
    conn = Conn("127.0.0.1", 5432, "app", "db", "pa:ss\\word")
    assert "pa:ss" not in repr(conn) and "pa:ss" not in " ".join(conn.args())
    with client_env(conn) as env:
        passfile = Path(env["PGPASSFILE"])
        assert (
            oct(passfile.stat().st_mode & 0o777) == "0o600" and oct(passfile.parent.stat().st_mode & 0o777) == "0o700"
        )
        assert passfile.read_text() == "127.0.0.1:5432:*:app:pa\\:ss\\\\word\n"
        assert "PGPASSWORD" not in env and env["PGAPPNAME"] == "aristobot-backup"
    assert not passfile.exists() and os.environ["PGPASSWORD"] == "inherited-password"
