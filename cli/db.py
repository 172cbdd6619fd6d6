"""`aristobot db upgrade|wait|revision`: the database schema."""

from __future__ import annotations

import click

from cli.errors import fail
from core.infra.config import get_settings


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (creates the database on a fresh server)."""
    from core.infra.db import wait_for_database
    from core.infra.logs import setup_logging
    from core.infra.migrate import upgrade_database

    setup_logging("cli", get_settings().file.log_level)
    wait_for_database(timeout=30, process="cli", server_only=True)
    upgrade_database()
    click.echo("database is up to date")


@db_group.command("wait")
@click.option("--timeout", default=120.0, show_default=True)
def db_wait(timeout: float) -> None:
    """Wait until the database is reachable and migrated (Procfile processes start with this)."""
    from core.infra.logs import setup_logging
    from core.infra.migrate import wait_for_schema

    setup_logging("cli", get_settings().file.log_level)
    try:
        wait_for_schema(timeout)
    except TimeoutError as exc:
        fail(str(exc))


@db_group.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (developers)."""
    from core.infra.migrate import make_revision

    make_revision(message)
