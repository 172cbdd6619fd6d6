"""`aristobot backup create|list|verify FILE|restore FILE`: database backups (docs/OPERATIONS.md)."""

from __future__ import annotations

from pathlib import Path

import click

from cli.errors import fail
from core.infra.config import get_settings


def _site():
    from core.backups.pg import site_from
    from core.infra.logs import setup_logging

    settings = get_settings()
    setup_logging("cli", settings.file.log_level)
    return site_from(settings)


def _megabytes(size: int) -> str:
    return f"{size / 1_048_576:.1f} MiB"


@click.group("backup")
def backup_group() -> None:
    """Database backups: pg_dump with a manifest, verified by a scratch restore."""


@backup_group.command("create")
@click.option("--verify/--no-verify", default=False, help="Restore it into a scratch database right after.")
def backup_create(verify: bool) -> None:
    """Take a backup now; prints its file."""
    from core.backups.dump import create_backup
    from core.backups.pg import BackupError
    from core.backups.verify import verify_backup

    site = _site()
    try:
        backup = create_backup(site)
        if verify:
            backup = verify_backup(site, backup.dump)
    except BackupError as exc:
        fail(str(exc))
        return
    click.echo(str(backup.dump))
    if backup.verification and not backup.verified_ok:
        fail(f"verification failed: {backup.verification['detail']}")


@backup_group.command("list")
def backup_list() -> None:
    """The backups of the backup directory, newest first, with their verification."""
    from core.backups.archive import list_backups

    site = _site()
    backups = list_backups(site.directory)
    if not backups:
        click.echo(f"no backup in {site.directory}")
    for backup in backups:
        check = backup.verification
        verdict = "not verified" if not check else ("verified" if check["ok"] else f"FAILED: {check['detail']}")
        click.echo(
            f"{backup.dump}  {backup.manifest['created_at'][:19]}  {_megabytes(backup.manifest['size_bytes']):>10}  "
            f"rev {backup.manifest['schema_revision']}  {verdict}"
        )


@backup_group.command("verify")
@click.argument("file", type=click.Path(path_type=Path))
def backup_verify(file: Path) -> None:
    """Restore FILE into a scratch database and compare with its manifest; exit 0 only when equal."""
    from core.backups.pg import BackupError
    from core.backups.verify import verify_backup

    try:
        backup = verify_backup(_site(), file)
    except BackupError as exc:
        fail(str(exc))
        return
    result = backup.verification or {}
    if not result.get("ok"):
        fail(f"{file.name}: verification failed: {result.get('detail')}")
    click.echo(f"{file.name}: ok, {result['detail']}")


@backup_group.command("restore")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
@click.option("--force", is_flag=True, help="End the database's other sessions (never while the arb is live).")
def backup_restore(file: Path, yes: bool, force: bool) -> None:
    """Replace the database with FILE's content (the current one is kept, renamed), then migrate forward."""
    from core.backups.pg import BackupError
    from core.backups.restore import check_backup, restore_backup
    from core.supervision.control import Supervisor

    site = _site()
    if not yes:
        click.confirm(
            f"Replace database {site.app.dbname} with {file.name}? Everything since that backup is set aside "
            "(kept in a renamed database)",
            abort=True,
        )
    # Under `make run`, the platform's own processes are stopped first (the arb engine with its clean exit) and
    # started again afterwards; PostgreSQL, Redis and the simulators stay up.
    supervisor = Supervisor.running(get_settings().var_dir)
    try:
        check_backup(file)  # a bad file stops nothing
        if supervisor is None:
            result = restore_backup(site, file, force=force)
        else:
            click.echo("stopping the platform's processes (the arbitrage engine first)...")
            supervisor.stop_app()
            result = restore_backup(site, file, force=force, live=supervisor.app_processes_running)
    except BackupError as exc:
        if supervisor is not None:
            supervisor.start_app()
        fail(str(exc))
        return
    kept = f"; the previous database is kept as {result.previous}" if result.previous else ""
    click.echo(f"restored {file.name} into {result.database} in {result.duration_s} s and migrated to head{kept}")
    if supervisor is None:
        click.echo(
            "Start the platform again (`make run`): the workers reconcile every order with the venues at start "
            "(docs/OPERATIONS.md, disaster recovery)."
        )
    else:
        supervisor.start_app()
        click.echo("the platform's processes are starting again: they reconcile every order with the venues")
