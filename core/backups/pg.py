"""The PostgreSQL client tools for backups: who connects (app role, admin role), where the password goes
(a 0600 passfile named by PGPASSFILE, never a command line or a log), and which pg_dump/pg_restore match
the server's major version."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL, make_url

from core.infra.config import Settings

TOOLS = ("pg_dump", "pg_restore")


class BackupError(Exception):
    """One line an operator can act on: what failed and what to do. Never holds a password."""


@dataclass(frozen=True)
class Conn:
    """Where and as whom to connect. The client tools get the password from a passfile, never on their
    command line; it is left out of the repr, so no log or traceback shows it."""

    host: str
    port: int
    user: str
    dbname: str
    password: str | None = field(default=None, repr=False)

    def to(self, dbname: str) -> Conn:
        return replace(self, dbname=dbname)

    def args(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user, "-d", self.dbname]

    def url(self) -> str:
        return URL.create(
            "postgresql+psycopg", self.user, self.password, self.host, self.port, self.dbname
        ).render_as_string(hide_password=False)

    def connect(self, **kwargs) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=self.dbname,
            password=self.password,
            connect_timeout=10,
            **kwargs,
        )


def _conn_from_url(url: str) -> Conn:
    parsed = make_url(url)
    return Conn(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        dbname=parsed.database or "postgres",
        password=parsed.password,
    )


def app_conn(settings: Settings) -> Conn:
    return _conn_from_url(settings.database_url)


def admin_conn(settings: Settings) -> Conn:
    """A role that may create, drop and rename databases: the embedded server's superuser (its password
    file in var/secrets), else DATABASE_ADMIN_URL, else the application's role (it then needs CREATEDB)."""
    app = app_conn(settings)
    if settings.embedded_postgres:
        from core.infra.embedded_pg import SUPERUSER, superuser_password_file

        secret = superuser_password_file(settings.var_dir / "pg")
        if not secret.exists():
            raise BackupError(f"the embedded server's superuser password file {secret} is missing")
        return replace(app, user=SUPERUSER, dbname="postgres", password=secret.read_text().strip())
    if settings.secrets.DATABASE_ADMIN_URL:
        return _conn_from_url(settings.secrets.DATABASE_ADMIN_URL).to("postgres")
    return app.to("postgres")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextlib.contextmanager
def client_env(*conns: Conn) -> Iterator[dict[str, str]]:
    """The environment for pg_dump/pg_restore: a passfile (0600, in a 0700 directory, removed after)."""
    with tempfile.TemporaryDirectory(prefix="aristobot-pgpass-") as folder:
        passfile = Path(folder) / "pgpass"
        lines = [
            ":".join(_escape(part) for part in (c.host, str(c.port), "*", c.user, c.password or ""))
            for c in conns
            if c.password
        ]
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGPASSFILE=str(passfile), PGCONNECT_TIMEOUT="10", PGAPPNAME="aristobot-backup")
        yield env


def server_major(conn: Conn) -> tuple[int, str]:
    """(major version, full version string) of the server."""
    try:
        with conn.connect() as db:
            number = int(db.execute("show server_version_num").fetchone()[0])  # type: ignore[index]
            version = str(db.execute("show server_version").fetchone()[0])  # type: ignore[index]
    except psycopg.Error as exc:
        raise BackupError(
            f"database {conn.dbname} on {conn.host}:{conn.port}: {str(exc).splitlines()[0][:300]}"
        ) from None
    return number // 10000, version


def _candidate_dirs(configured: str | None) -> list[Path]:
    dirs: list[Path] = [Path(configured)] if configured else []
    with contextlib.suppress(ImportError):
        from pgserver._commands import POSTGRES_BIN_PATH

        dirs.append(Path(POSTGRES_BIN_PATH))
    on_path = shutil.which("pg_dump")
    if on_path:
        dirs.append(Path(on_path).resolve().parent)
    dirs.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    return dirs


def tool_major(binary: Path) -> int | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", out.stdout)
    return int(found.group(1)) if found else None


def find_tools(major: int, configured: str | None = None) -> Path:
    """The directory holding pg_dump and pg_restore of the server's major version."""
    seen: list[str] = []
    for folder in _candidate_dirs(configured):
        if not all((folder / tool).is_file() for tool in TOOLS):
            continue
        version = tool_major(folder / "pg_dump")
        if version == major:
            return folder
        seen.append(f"{folder} ({version})")
    raise BackupError(
        f"no pg_dump/pg_restore of PostgreSQL {major} found (found: {', '.join(seen) or 'none'}); install the "
        f"client tools of version {major} and set backups.pg_bin_dir in config.yaml"
    )


def run_tool(command: list[str], env: dict[str, str], what: str) -> None:
    """Run a client tool; a failure is a BackupError with the tool's own last lines (no secret in them:
    passwords are only in the passfile)."""
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BackupError(f"{what}: could not run {command[0]}: {exc}") from None
    if result.returncode < 0:
        name = signal.Signals(-result.returncode).name
        full = " (file too large: the disk or the file size limit is full)" if name == "SIGXFSZ" else ""
        raise BackupError(f"{what} failed: killed by {name}{full}")
    if result.returncode != 0:
        lines = [line for line in (result.stderr or "").splitlines() if line.strip()]
        reason = " / ".join(lines[-3:]) or f"exit code {result.returncode}"
        raise BackupError(f"{what} failed: {reason[:600]}")


@dataclass(frozen=True)
class Site:
    """Everything a backup operation needs: the application's database, an admin connection (scratch
    databases, the restore's swap), the backup directory and where to look for the client tools."""

    app: Conn
    admin: Conn
    directory: Path
    pg_bin_dir: str | None = None

    def tools(self) -> Path:
        return find_tools(server_major(self.app)[0], self.pg_bin_dir)


def site_from(settings: Settings) -> Site:
    return Site(app_conn(settings), admin_conn(settings), settings.backup_dir, settings.file.backups.pg_bin_dir)
