"""Schema migrations (Alembic), safe to run from several processes at once."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.db import get_engine

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
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
            exists = conn.execute(text("select 1 from pg_database where datname = :n"),
                                  {"n": target.database}).scalar()
            if not exists:
                conn.execute(text(f'create database "{target.database}"'))
                log.info("database_created", extra={"database": target.database})
    finally:
        admin.dispose()


def upgrade_database() -> None:
    engine = get_engine()
    ensure_database_exists(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        conn.execute(text("select pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    log.info("database_migrated")


def make_revision(message: str) -> None:
    command.revision(alembic_config(), message=message, autogenerate=True)
