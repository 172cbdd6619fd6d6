"""Schema migrations (Alembic), safe to run from several processes at once."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from core.infra.db import get_engine

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
_LOCK_ID = 0x41524953  # "ARIS": one advisory lock so concurrent starters migrate once


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def ensure_database_exists(url: str) -> None:
    """Create the application database on a fresh server (the embedded one starts with `postgres` only)."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("select 1 from pg_database where datname = :n"), {"n": target.database}).scalar()
            if not exists:
                conn.execute(text(f'create database "{target.database}"'))
                log.info("database_created", extra={"database": target.database})
    finally:
        admin.dispose()


def upgrade_database(url: str | None = None) -> None:
    """Migrate to head: the application's database, or the one at `url` (a restored backup's, a bench's)."""
    engine = create_engine(url) if url else get_engine()
    try:
        ensure_database_exists(engine.url.render_as_string(hide_password=False))
        with engine.begin() as conn:
            conn.execute(text("select pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    finally:
        if url:
            engine.dispose()
    log.info("database_migrated")


def schema_is_current() -> bool:
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    with get_engine().connect() as conn:
        try:
            current = set(conn.execute(text("select version_num from alembic_version")).scalars())
        except ProgrammingError:
            return False  # no alembic_version table yet: not migrated
    return current == heads


def wait_for_schema(timeout: float = 120.0) -> None:
    """Block until the database exists and is migrated to head (`make run` migrates while the
    processes start; they must not touch tables before that)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if schema_is_current():
                return
            reason = "not migrated yet"
        except OperationalError as exc:
            reason = str(exc.orig).splitlines()[0][:200]
        if time.monotonic() > deadline:
            raise TimeoutError(f"database not ready after {timeout:.0f}s: {reason}")
        log.info("waiting_for_schema", extra={"reason": reason})
        time.sleep(1.0)


def make_revision(message: str) -> None:
    command.revision(alembic_config(), message=message, autogenerate=True)
