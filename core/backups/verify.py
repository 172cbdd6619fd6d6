"""Prove a backup restores: pg_restore it into a scratch database, compare every table's row count and the
schema revision with the manifest, drop the scratch database, and record the result in the manifest.

The scratch database is created by the admin connection (core/backups/pg.py admin_conn) and owned by the
application's role, which restores into it: the restored objects belong to the application, as they must
when a restore swaps the scratch database in.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from core.backups.archive import Backup, check_file, load, record_verification
from core.backups.dump import schema_revision, table_counts
from core.backups.pg import BackupError, Conn, Site, client_env, run_tool

log = logging.getLogger(__name__)


def admin_error(exc: psycopg.Error, admin: Conn, action: str) -> BackupError:
    reason = str(exc).splitlines()[0][:300]
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return BackupError(
            f"{action}: the role {admin.user} may not ({reason}); on an external server set DATABASE_ADMIN_URL "
            "to a role with CREATEDB that is a member of the application's role (docs/OPERATIONS.md)"
        )
    return BackupError(f"{action}: {reason}")


def create_database(site: Site, name: str) -> None:
    try:
        with site.admin.connect(autocommit=True) as db:
            db.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(site.app.user))
            )
    except psycopg.Error as exc:
        raise admin_error(exc, site.admin, f"could not create the scratch database {name}") from None


def drop_database(site: Site, name: str) -> None:
    try:
        with site.admin.connect(autocommit=True) as db:
            db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise admin_error(exc, site.admin, f"could not drop the scratch database {name}") from None


@contextlib.contextmanager
def scratch_database(site: Site, purpose: str) -> Iterator[str]:
    """A new empty database owned by the application's role, dropped if the block fails; on success the
    caller drops it (verify) or swaps it in (restore)."""
    name = f"{site.app.dbname}_{purpose}_{secrets.token_hex(4)}"
    create_database(site, name)
    try:
        yield name
    except BaseException:
        drop_database(site, name)
        raise


def restore_into(site: Site, tools: Path, backup: Backup, dbname: str) -> dict[str, int]:
    """pg_restore (one transaction: all or nothing) into an empty database; returns its row counts after
    checking them, and the schema revision, against the manifest."""
    target = site.app.to(dbname)
    with client_env(target) as env:
        run_tool(
            [
                str(tools / "pg_restore"),
                "--no-password",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                *target.args(),
                str(backup.dump),
            ],
            env,
            "pg_restore",
        )
    with target.connect() as db:
        counts = table_counts(db)
        revision = schema_revision(db)
    expected = {name: int(count) for name, count in backup.manifest["tables"].items()}
    if counts != expected:
        differ = sorted(name for name in set(counts) | set(expected) if counts.get(name) != expected.get(name))
        shown = ", ".join(f"{name} {counts.get(name)} != {expected.get(name)}" for name in differ[:10])
        raise BackupError(f"row counts differ from the manifest (restored != manifest): {shown}")
    if revision != backup.manifest["schema_revision"]:
        raise BackupError(
            f"schema revision {revision} differs from the manifest's {backup.manifest['schema_revision']}"
        )
    return counts


def verify_backup(site: Site, dump: Path) -> Backup:
    """Restore into a scratch database, compare, drop it; the result (ok or why not) is written into the
    manifest and returned. Raises BackupError only when there is no manifest to record it in."""
    backup = load(dump)
    started = time.monotonic()
    try:
        check_file(backup)
        tools = site.tools()
        with scratch_database(site, "verify") as name:
            counts = restore_into(site, tools, backup, name)
        drop_database(site, name)
    except BackupError as exc:
        log.error("backup_verify_failed", extra={"file": dump.name, "error": str(exc)})
        return record_verification(backup, False, str(exc))
    detail = f"{len(counts)} tables, {sum(counts.values())} rows in all, equal, in {time.monotonic() - started:.1f} s"
    log.info("backup_verified", extra={"file": dump.name, "detail": detail})
    return record_verification(backup, True, detail)
