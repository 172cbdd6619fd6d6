"""Restore a backup over the application's database, losing nothing on the way.

1. The dump is the one its manifest describes (size, sha256), and its schema revision is known to this code
   (a backup made by a newer Aristobot is refused: upgrade the code first).
2. The platform is stopped: no process reports itself live in Redis and no session is open on the database
   (`force` ends stray sessions, but never while the arbitrage engine is live: it must exit cleanly).
3. The backup is restored into a scratch database and checked against the manifest (as `verify` does).
4. The swap: the current database is renamed `<name>_before_restore_<time>` (kept, for the operator to drop),
   the restored one takes its name. A failure before this point leaves the current database untouched.
5. Migrations bring the restored schema forward to this code's head.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from psycopg import sql

from core.backups.archive import Backup, check_file, load
from core.backups.pg import BackupError, Site
from core.backups.verify import admin_error, restore_into, scratch_database
from core.infra.liveness import read_liveness
from core.infra.migrate import alembic_config, upgrade_database

log = logging.getLogger(__name__)
STOP_FIRST = (
    "stop the platform first (Ctrl+C on `make run`, or stop its service), start only the database "
    "(embedded: `aristobot services postgres`), then restore"
)


@dataclass(frozen=True)
class Restored:
    backup: Backup
    database: str
    previous: str | None  # the replaced database, kept under this name
    duration_s: float


def check_revision(backup: Backup) -> None:
    revision = backup.manifest["schema_revision"]
    if not revision:
        raise BackupError(f"{backup.dump.name}: the backup holds no schema revision: not an Aristobot database")
    script = ScriptDirectory.from_config(alembic_config())
    try:
        known = script.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise BackupError(
            f"{backup.dump.name}: its schema revision {revision} is not known to this code (heads: "
            f"{', '.join(script.get_heads())}): it was made by a newer Aristobot; upgrade the code, then restore"
        )


def live_processes() -> list[str]:
    try:
        return sorted(name for name, process in read_liveness().items() if process["ok"])
    except redis.RedisError:
        return []  # Redis is stopped with the platform; the database sessions still tell


def open_sessions(site: Site, dbname: str) -> int:
    try:
        with site.admin.connect(autocommit=True) as db:
            row = db.execute(
                "select count(*) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()", (dbname,)
            ).fetchone()
    except psycopg.Error as exc:
        raise admin_error(exc, site.admin, "could not list the database's sessions") from None
    return int(row[0]) if row else 0


def check_stopped(site: Site, dbname: str, force: bool, live: list[str]) -> None:
    if "arb" in live:
        raise BackupError(
            "the arbitrage engine is live: stop it so it exits cleanly with no open leg (--force does not "
            f"override this); {STOP_FIRST}"
        )
    sessions = open_sessions(site, dbname)
    if (live or sessions) and not force:
        raise BackupError(
            f"the platform is running (live: {', '.join(live) or 'none'}; {sessions} session(s) on database "
            f"{dbname}): {STOP_FIRST}"
        )


def _swap(site: Site, restored: str, target: str, force: bool) -> str | None:
    previous = f"{target}_before_restore_{datetime.now(UTC):%Y%m%d%H%M%S}"
    try:
        with site.admin.connect(autocommit=True) as db:
            if force:
                db.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s "
                    "and pid <> pg_backend_pid()",
                    (target,),
                )
            exists = db.execute("select 1 from pg_database where datname = %s", (target,)).fetchone()
            if exists:
                db.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(target), sql.Identifier(previous))
                )
            try:
                db.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(restored), sql.Identifier(target))
                )
            except psycopg.Error:
                if exists:
                    db.execute(
                        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                            sql.Identifier(previous), sql.Identifier(target)
                        )
                    )
                raise
    except psycopg.Error as exc:
        raise admin_error(exc, site.admin, f"could not swap the restored database in for {target}") from None
    return previous if exists else None


def replace_database(site: Site, backup: Backup, target: str, force: bool = False) -> str | None:
    """Steps 3-5: restore into a scratch database, swap it in for `target`, migrate it forward. Returns the
    name the replaced database is kept under (None when there was none)."""
    with scratch_database(site, "restore") as scratch:
        restore_into(site, site.tools(), backup, scratch)
        previous = _swap(site, scratch, target, force)
    log.warning("backup_restored", extra={"file": backup.dump.name, "database": target, "previous": previous})
    upgrade_database(site.app.to(target).url())
    return previous


def check_backup(dump: Path) -> Backup:
    """Steps 1-2 of the module's: the file is whole and of a schema this code knows (nothing is touched)."""
    backup = load(dump)
    check_file(backup)
    check_revision(backup)
    return backup


def restore_backup(
    site: Site, dump: Path, *, force: bool = False, live: Callable[[], list[str]] = live_processes
) -> Restored:
    """Restore `dump` as the application's database; see the module's steps. `live` names the platform's
    processes still running: by default those reporting themselves alive in Redis; the supervisor's own
    view when it has just stopped them (a stopped process' last report stays fresh for a few seconds)."""
    started = time.monotonic()
    backup = check_backup(dump)
    target = site.app.dbname
    check_stopped(site, target, force, live())
    previous = replace_database(site, backup, target, force)
    return Restored(backup, target, previous, round(time.monotonic() - started, 2))
