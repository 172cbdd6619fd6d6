"""Take a backup: a consistent `pg_dump -Fc` of the application database, and its manifest.

Consistency: one REPEATABLE READ transaction exports its snapshot, counts every table's rows in it, and
pg_dump dumps that same snapshot (`--snapshot`), so the manifest's counts are exactly the dump's.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from core.backups.archive import Backup, dump_name, ensure_directory, manifest_path, sha256_of, write_json
from core.backups.pg import BackupError, Conn, Site, client_env, run_tool, tool_major

log = logging.getLogger(__name__)
MANIFEST_FORMAT = 1


def table_counts(db: psycopg.Connection) -> dict[str, int]:
    """Rows of every table of the public schema, as this connection's transaction sees them."""
    names = [
        row[0] for row in db.execute("select tablename from pg_tables where schemaname = 'public' order by tablename")
    ]
    return {
        name: int(db.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(name))).fetchone()[0])  # type: ignore[index]
        for name in names
    }


def schema_revision(db: psycopg.Connection) -> str | None:
    exists = db.execute("select to_regclass('public.alembic_version') is not null").fetchone()
    if not (exists and exists[0]):
        return None
    row = db.execute("select version_num from alembic_version").fetchone()
    return str(row[0]) if row else None


def _free_path(directory: Path, now: datetime) -> Path:
    dump = directory / dump_name(now)
    serial = 1
    while dump.exists() or manifest_path(dump).exists():
        serial += 1
        dump = directory / dump_name(now).replace(".dump", f"-{serial}.dump")
    return dump


def _pg_dump(tools: Path, app: Conn, snapshot: str, target: Path) -> None:
    # Created 0600 before pg_dump opens it (it truncates and keeps the mode): the data is never world-readable.
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    with client_env(app) as env:
        run_tool(
            [str(tools / "pg_dump"), "-Fc", "--no-password", f"--snapshot={snapshot}", "-f", str(target), *app.args()],
            env,
            "pg_dump",
        )


def create_backup(site: Site) -> Backup:
    """Dump the database into the backup directory; returns the backup (dump + manifest). On any failure
    nothing half-written is left behind, and the backups already there are untouched."""
    directory = ensure_directory(site.directory)
    tools = site.tools()
    started = time.monotonic()
    now = datetime.now(UTC)
    dump = _free_path(directory, now)
    partial = dump.with_name(dump.name + ".partial")
    try:
        with site.app.connect() as db:
            db.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            db.read_only = True
            snapshot = str(db.execute("select pg_export_snapshot()").fetchone()[0])  # type: ignore[index]
            counts = table_counts(db)
            revision = schema_revision(db)
            server_version = str(db.execute("show server_version").fetchone()[0])  # type: ignore[index]
            _pg_dump(tools, site.app, snapshot, partial)
        size = partial.stat().st_size
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "file": dump.name,
            "created_at": now.isoformat(),
            "database": site.app.dbname,
            "size_bytes": size,
            "sha256": sha256_of(partial),
            "tables": counts,
            "rows_total": sum(counts.values()),
            "schema_revision": revision,
            "server_version": server_version,
            "pg_dump_major": tool_major(tools / "pg_dump"),
            "duration_s": round(time.monotonic() - started, 3),
        }
        partial.replace(dump)
        write_json(manifest_path(dump), manifest)
    except psycopg.Error as exc:
        _discard(partial, dump)
        raise BackupError(f"backup failed: database: {str(exc).splitlines()[0][:300]}") from None
    except OSError as exc:
        _discard(partial, dump)
        raise BackupError(f"backup failed: {dump.parent}: {exc.strerror or exc}") from None
    except BackupError:
        _discard(partial, dump)
        raise
    log.info("backup_created", extra={"file": dump.name, "size_bytes": size, "duration_s": manifest["duration_s"]})
    return Backup(dump, manifest)


def _discard(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            log.warning("backup_partial_not_removed", extra={"file": str(path)})
