"""Backups end to end on the test session's PostgreSQL with the real pg_dump/pg_restore: the CLI's create,
list, verify and restore on one small database of their own, the daily task's failure event, and the faults
(a bad backup directory, a corrupt or truncated dump, a backup from a newer schema)."""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from click.testing import CliRunner
from psycopg import sql

from cli.main import main
from core.backups.archive import list_backups, manifest_path
from core.backups.pg import Conn
from core.infra.bus import BACKUP_LAST_FAILURE, LIVENESS
from core.infra.config import get_settings
from tests.conftest import PG_APP_ROLE, PG_DATA_DIR, PG_PORT, TEST_CONFIG


def _superuser() -> Conn:
    from core.infra.embedded_pg import SUPERUSER, superuser_password_file

    password = superuser_password_file(PG_DATA_DIR).read_text().strip()
    return Conn("127.0.0.1", PG_PORT, SUPERUSER, "postgres", password)


def _head() -> str:
    from alembic.script import ScriptDirectory

    from core.infra.migrate import alembic_config

    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


def _downgrade_one(url: str) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from core.infra.migrate import alembic_config

    engine = create_engine(url)
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "-1")
    engine.dispose()


def _revision(url: str) -> str:
    with psycopg.connect(url) as db:
        return str(db.execute("select version_num from alembic_version").fetchone()[0])  # type: ignore[index]


@pytest.fixture(scope="module")
def source_db(infra):
    """A small database of its own (the app's schema at head, three users), owned by the test's app role."""
    from core.infra.migrate import upgrade_database

    name = f"aristobot_backups_{secrets.token_hex(3)}"
    admin = _superuser()
    with admin.connect(autocommit=True) as db:
        db.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(PG_APP_ROLE)))
    app_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{name}"
    upgrade_database(app_url.replace("postgresql://", "postgresql+psycopg://"))
    _downgrade_one(app_url.replace("postgresql://", "postgresql+psycopg://"))  # a restore must migrate it forward
    with psycopg.connect(app_url) as db:
        for user in ("ann", "bob", "cid"):
            db.execute(
                "insert into users (username, password_hash, is_admin, is_active, created_at) "
                "values (%s, 'x', %s, true, now())",
                (user, user == "ann"),
            )
    yield {"name": name, "url": app_url}
    with admin.connect(autocommit=True) as db:
        for (other,) in db.execute("select datname from pg_database where datname like %s", (f"{name}%",)).fetchall():
            db.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(other)))


@pytest.fixture()
def backup_env(source_db, tmp_path, monkeypatch):
    """The settings the CLI and the daily task read: the module's database, a backup directory of the test's
    own (missing: the first backup creates it), and the superuser as the admin role (an external server).
    The rest of the process (sessions, notifications, the web app) stays on the test database."""
    backup_dir = tmp_path / "disk" / "backups"
    config = yaml.safe_load(TEST_CONFIG.read_text()) | {"backups": {"dir": str(backup_dir)}}
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    from core.infra.db import new_session

    new_session().close()  # the session's engine is made (and cached) for the test database before the switch
    admin = _superuser()
    monkeypatch.setenv("ARISTOBOT_CONFIG", str(config_path))
    monkeypatch.setenv("DATABASE_URL", source_db["url"])
    monkeypatch.setenv("DATABASE_ADMIN_URL", f"postgresql://{admin.user}:{admin.password}@127.0.0.1:{PG_PORT}/postgres")
    get_settings.cache_clear()
    yield backup_dir
    get_settings.cache_clear()


def _cli(*args: str, input: str | None = None):
    return CliRunner().invoke(main, ["backup", *args], input=input)


def _count_users(url: str) -> int:
    with psycopg.connect(url) as db:
        return int(db.execute("select count(*) from users").fetchone()[0])  # type: ignore[index]


@pytest.mark.slow
def test_create_list_verify_and_restore_by_the_cli(backup_env, source_db, redis_client):
    created = _cli("create")
    assert created.exit_code == 0, created.output
    dump = Path(created.stdout.strip())
    assert dump.parent == backup_env and oct(backup_env.stat().st_mode & 0o777) == "0o700"
    assert oct(dump.stat().st_mode & 0o777) == "0o600" and oct(manifest_path(dump).stat().st_mode & 0o777) == "0o600"
    manifest = json.loads(manifest_path(dump).read_text())
    assert manifest["tables"]["users"] == 3 and manifest["tables"]["alembic_version"] == 1
    assert manifest["schema_revision"] != _head() and manifest["size_bytes"] == dump.stat().st_size
    assert manifest["server_version"] and len(manifest["sha256"]) == 64

    verified = _cli("verify", str(dump))
    assert verified.exit_code == 0, verified.output
    assert "ok" in verified.output and "rows in all, equal" in verified.output
    assert "verified" in _cli("list").output
    with psycopg.connect(_superuser().url().replace("+psycopg", "")) as db:  # the scratch database is gone
        scratch = db.execute("select count(*) from pg_database where datname like '%\\_verify\\_%'").fetchone()
    assert scratch == (0,)

    with psycopg.connect(source_db["url"]) as db:  # written after the backup
        db.execute(
            "insert into users (username, password_hash, is_admin, is_active, created_at) "
            "values ('dan', 'x', false, true, now())"
        )
    assert _count_users(source_db["url"]) == 4
    declined = _cli("restore", str(dump), input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    redis_client.hset(LIVENESS, "worker", json.dumps({"ts": time.time(), "pid": 1, "host": "h", "info": {}}))
    redis_client.hset(LIVENESS, "arb", json.dumps({"ts": time.time(), "pid": 2, "host": "h", "info": {}}))
    refused = _cli("restore", str(dump), "--yes", "--force")
    assert refused.exit_code == 1 and "arbitrage engine is live" in refused.output
    redis_client.hdel(LIVENESS, "arb")
    running = _cli("restore", str(dump), "--yes")
    assert running.exit_code == 1 and "the platform is running" in running.output and "worker" in running.output
    assert _count_users(source_db["url"]) == 4  # refused: untouched

    restored = _cli("restore", str(dump), "--yes", "--force")
    redis_client.hdel(LIVENESS, "worker")
    assert restored.exit_code == 0, restored.output
    assert "migrated to head" in restored.output and "make run" in restored.output
    assert _count_users(source_db["url"]) == 3 and _revision(source_db["url"]) == _head()  # migrated forward
    previous = restored.output.split("kept as ")[1].split()[0]
    assert _count_users(source_db["url"].rsplit("/", 1)[0] + f"/{previous}") == 4  # nothing lost


@pytest.mark.slow
def test_corrupt_truncated_or_newer_backups_are_refused(backup_env, source_db):
    dump = Path(_cli("create").stdout.strip())
    manifest = json.loads(manifest_path(dump).read_text())

    flipped = dump.with_name("aristobot-19990101T000000Z.dump")
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    manifest_path(flipped).write_text(json.dumps(manifest))
    result = _cli("verify", str(flipped))
    assert result.exit_code == 1 and "sha256 differs" in result.output
    assert json.loads(manifest_path(flipped).read_text())["verification"]["ok"] is False

    truncated = dump.with_name("aristobot-19990102T000000Z.dump")
    truncated.write_bytes(dump.read_bytes()[: manifest["size_bytes"] // 2])
    manifest_path(truncated).write_text(json.dumps({**manifest, "sha256": "0" * 64}))
    result = _cli("restore", str(truncated), "--yes")
    assert result.exit_code == 1 and "truncated" in result.output

    # A dump that was broken when written (its manifest matches it): pg_restore itself refuses it.
    broken = dump.with_name("aristobot-19990103T000000Z.dump")
    shutil.copy(truncated, broken)
    from core.backups.archive import sha256_of

    size = broken.stat().st_size
    manifest_path(broken).write_text(json.dumps({**manifest, "size_bytes": size, "sha256": sha256_of(broken)}))
    result = _cli("verify", str(broken))
    assert result.exit_code == 1 and "pg_restore failed" in result.output

    newer = dump.with_name("aristobot-19990104T000000Z.dump")
    shutil.copy(dump, newer)
    manifest_path(newer).write_text(json.dumps({**manifest, "schema_revision": "ffffffffffff"}))
    result = _cli("restore", str(newer), "--yes")
    assert result.exit_code == 1 and "made by a newer Aristobot" in result.output
    assert _count_users(source_db["url"]) == 3
    missing = _cli("verify", str(dump.with_name("nothing.dump")))
    assert missing.exit_code == 1 and "no such backup file" in missing.output


def _immutable(path: Path, on: bool) -> bool:
    return subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True).returncode == 0


@pytest.mark.slow
def test_a_full_missing_or_read_only_backup_directory_is_a_clear_error(backup_env, source_db):
    first = _cli("create")
    assert first.exit_code == 0  # the missing directory was created
    kept = list_backups(backup_env)
    assert len(kept) == 1

    # Full: pg_dump can write 64 KiB, no more (the dump of this database is larger).
    full = subprocess.run(
        [sys.executable, "-m", "cli", "backup", "create"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024)),
    )
    assert full.returncode == 1 and "pg_dump failed" in full.stderr and "file too large" in full.stderr
    assert [b.dump for b in list_backups(backup_env)] == [b.dump for b in kept]
    assert not list(backup_env.glob("*.partial"))

    if not _immutable(backup_env, True):
        pytest.skip("chattr +i is not available here (the read-only case needs it: root ignores permissions)")
    try:
        read_only = _cli("create")
    finally:
        _immutable(backup_env, False)
    assert read_only.exit_code == 1 and "is not writable" in read_only.output

    shutil.rmtree(backup_env)
    backup_env.write_text("a file where the backup directory should be")
    in_the_way = _cli("create")
    assert in_the_way.exit_code == 1 and "is not a directory" in in_the_way.output


@pytest.mark.slow
def test_daily_backup_failure_is_an_error_event_then_a_good_one_clears_it(
    backup_env, make_user, redis_client, db_session, app, login
):
    from core.backups.daily import run_daily_backup
    from core.health import system_health
    from core.models.notifications import Notification

    admin, password = make_user(is_admin=True)
    backup_env.parent.mkdir(parents=True)
    backup_env.write_text("in the way")
    failed = run_daily_backup(get_settings())
    assert failed["ok"] is False and "is not a directory" in failed["error"]
    assert "is not a directory" in json.loads(redis_client.get(BACKUP_LAST_FAILURE))["error"]
    notified = db_session.query(Notification).filter_by(user_id=admin.id, title="Backup failed").one()
    assert notified.severity == "error" and "is not a directory" in notified.body
    health = system_health()
    assert health["backup"]["status"] == "error" and health["status"] in {"degraded", "down"}

    backup_env.unlink()
    done = run_daily_backup(get_settings())
    assert done["ok"] is True and redis_client.get(BACKUP_LAST_FAILURE) is None
    health = system_health()["backup"]
    assert health["ok"] and health["status"] == "ok" and health["last"]["verification"]["ok"] is True
    c = app.test_client()  # the admin's System page: the Backups card
    login(admin.username, password, test_client=c)
    page = c.get("/admin/system").get_data(as_text=True)
    assert 'id="backups"' in page and "restored, equal" in page and "MiB" in page


def test_site_of_the_embedded_server_uses_its_superuser(tmp_path, monkeypatch):
    from core.backups.pg import BackupError, admin_conn

    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("ARISTOBOT_VAR", str(tmp_path))
    monkeypatch.setenv("POSTGRES_APP_PASSWORD", "app-password-123")
    get_settings.cache_clear()
    try:
        with pytest.raises(BackupError, match="superuser password file .* is missing"):
            admin_conn(get_settings())
        (tmp_path / "secrets").mkdir()
        (tmp_path / "secrets" / "postgres-superuser").write_text("su-password\n")
        admin = admin_conn(get_settings())
    finally:
        get_settings.cache_clear()
    assert (admin.user, admin.dbname, admin.password) == ("postgres", "postgres", "su-password")


@pytest.mark.slow
def test_bench_backup_measures_a_dump_a_verify_and_a_restore(backup_env):
    result = CliRunner().invoke(main, ["bench", "backup", "--orders", "200", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["orders"] == 200 and report["fills"] == 200 and report["verified"] is True
    assert report["rows_total"] >= 600 and report["size_bytes"] > 0
    assert {"dump_s", "verify_s", "restore_s"} <= set(report)
    with psycopg.connect(_superuser().url().replace("+psycopg", "")) as db:  # the throwaway database is gone
        assert db.execute("select count(*) from pg_database where datname like '%\\_bench\\_%'").fetchone() == (0,)
