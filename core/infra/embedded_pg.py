"""The embedded PostgreSQL, set up for least privilege.

* Every connection, over TCP and over the Unix socket, must give a password (SCRAM-SHA-256).
* The Unix socket lives in a private directory (0700) owned by the account that runs the server.
* The superuser's password is generated at first start into a 0600 file next to the data directory
  (`secrets/postgres-superuser`); only this module reads it, and it never enters any environment.
* The application connects as its own role, which owns the application database and is not a superuser
  (no CREATEDB, CREATEROLE, REPLICATION, BYPASSRLS, hence no `COPY ... TO PROGRAM`).

Installs made when the server trusted every local connection are upgraded at start: the superuser gets
its password (in single-user mode, before the server listens), pg_hba.conf is rewritten, and the
application role is created and handed the database and everything in it. A lost superuser password
file is replaced the same way (whoever can delete it is the platform's account already).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from core.infra.config import EMBEDDED_DB_NAME, EMBEDDED_DB_ROLE
from core.infra.embedded_services import (
    ensure_port_free,
    forward_stop_signals,
    private_dir,
    private_file,
    read_or_create_secret,
    run_as,
    start_server,
)

SUPERUSER = "postgres"
PG_HBA = """# Written by Aristobot at every start (core/infra/embedded_pg.py): a password for every connection.
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""


def _pg_bin(name: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _pg_system_user() -> str | None:
    """Postgres refuses to run as root; as pgserver does, run it as an unprivileged `pgserver` user."""
    if os.geteuid() != 0:
        return None
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists("pgserver")
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    return "pgserver"


def socket_dir(data_dir: Path) -> Path:
    return data_dir.parent / "pg-run"


def superuser_password_file(data_dir: Path) -> Path:
    return data_dir.parent / "secrets" / "postgres-superuser"


def ensure_traversable(path: Path) -> None:
    for parent in path.resolve().parents:
        parent.chmod(parent.stat().st_mode | 0o011)


def _private_dirs_for(user: str | None, data_dir: Path) -> None:
    """The data and socket directories: 0700, owned by the account that runs the server. When that is
    the `pgserver` system user (the platform runs as root), it may cross the var directory (group x;
    nothing for other accounts) but not list it; the secrets in it are in 0700 directories or 0600 files."""
    for path in (data_dir, socket_dir(data_dir)):
        private_dir(path)
    if user is None:
        return
    import pwd

    entry = pwd.getpwnam(user)
    for path in (data_dir, socket_dir(data_dir)):
        shutil.chown(path, entry.pw_uid, entry.pw_gid)
    var_dir = data_dir.parent
    os.chown(var_dir, -1, entry.pw_gid)
    var_dir.chmod((var_dir.stat().st_mode & 0o700) | 0o010)
    ensure_traversable(var_dir)


@contextlib.contextmanager
def _password_file_for(user: str | None, data_dir: Path, password: str) -> Iterator[Path]:
    """initdb's --pwfile, readable only by the server's account, removed right after."""
    path = private_file(socket_dir(data_dir) / "initdb-password", password + "\n")
    try:
        if user is not None:
            shutil.chown(path, user)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _trusts_local_connections(data_dir: Path) -> bool:
    hba = data_dir / "pg_hba.conf"
    return any(
        line.split()[-1:] == ["trust"]
        for line in hba.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5803), computed here so that the password
    itself never reaches the server, its logs or its statistics."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(hashlib.sha256(client_key).digest()).decode()}:{b64(server_key).decode()}"
    )


def _set_superuser_password_offline(data_dir: Path, user: str | None, password: str) -> None:
    """An install from before passwords: give the superuser one in single-user mode (no server listens)."""
    statement = sql.SQL("ALTER ROLE {} WITH PASSWORD {};\n").format(
        sql.Identifier(SUPERUSER), sql.Literal(scram_verifier(password))
    )
    subprocess.run(
        [_pg_bin("postgres"), "--single", "-j", "-D", str(data_dir), "postgres"],
        input=statement.as_string(None).encode(),
        check=True,
        **run_as(user),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def init_postgres(data_dir: Path) -> str | None:
    """Create (or upgrade) the cluster for password authentication. Returns the account to run it as."""
    user = _pg_system_user()
    _private_dirs_for(user, data_dir)
    new_password = not superuser_password_file(data_dir).exists()
    password = read_or_create_secret(superuser_password_file(data_dir))
    if not (data_dir / "PG_VERSION").exists():
        with _password_file_for(user, data_dir, password) as pwfile:
            subprocess.run(
                [
                    _pg_bin("initdb"),
                    "-D",
                    str(data_dir),
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=utf8",
                    "-U",
                    SUPERUSER,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                **run_as(user),
            )
    elif new_password or _trusts_local_connections(data_dir):  # from before passwords, or the file was lost
        _set_superuser_password_offline(data_dir, user, password)
    (data_dir / "pg_hba.conf").write_text(PG_HBA)
    return user


def postgres_command(data_dir: Path, port: int) -> list[str]:
    return [
        _pg_bin("postgres"),
        "-D",
        str(data_dir),
        "-p",
        str(port),
        "-h",
        "127.0.0.1",
        "-k",
        str(socket_dir(data_dir)),
        "-c",
        "max_connections=200",
        "-c",
        "fsync=on",
        "-c",
        "password_encryption=scram-sha-256",
        "-c",
        "unix_socket_permissions=0700",
        "-c",
        "log_min_messages=warning",
    ]


def superuser_connection(data_dir: Path, port: int, dbname: str = "postgres", timeout: float = 60.0):
    """Connect as the superuser (only this module and the tests do), waiting while the server starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg.connect(
                host="127.0.0.1",
                port=port,
                user=SUPERUSER,
                dbname=dbname,
                autocommit=True,
                password=superuser_password_file(data_dir).read_text().strip(),
                connect_timeout=3,
            )
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def provision_app_database(
    data_dir: Path, port: int, app_password: str, database: str = EMBEDDED_DB_NAME, role: str = EMBEDDED_DB_ROLE
) -> None:
    """Idempotent: the application role (not a superuser) exists, owns `database` and everything in it, and
    logs in with `app_password`. The role may log in only at the end, once its database is in place."""
    ident = sql.Identifier(role)
    with superuser_connection(data_dir, port) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(ident))
        conn.execute(
            sql.SQL("ALTER ROLE {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS").format(ident)
        )
        if conn.execute("select 1 from pg_database where datname = %s", (database,)).fetchone():
            conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), ident))
        else:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), ident))
    with superuser_connection(data_dir, port, dbname=database) as conn:
        _hand_over_objects(conn, role)
    with superuser_connection(data_dir, port) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(ident, sql.Literal(scram_verifier(app_password)))
        )


def _hand_over_objects(conn: psycopg.Connection, role: str) -> None:
    """Tables, views, sequences, types and functions that an older install created as the superuser."""
    ident = sql.Identifier(role)
    conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(ident))
    relations = conn.execute(
        """
        select c.oid::regclass::text, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f') and c.relowner <> %s::regrole
          and not (c.relkind = 'S' and exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                   and d.objid = c.oid and d.deptype in ('a', 'i')))""",
        (role,),
    ).fetchall()
    kinds = {"v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE", "f": "FOREIGN TABLE"}
    for name, kind in relations:  # a table's own sequences and indexes follow it
        conn.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(kinds.get(kind, "TABLE")), sql.SQL(name), ident))
    for (name,) in conn.execute(
        """
        select t.oid::regtype::text from pg_type t join pg_namespace n on n.oid = t.typnamespace
        where n.nspname = 'public' and t.typtype in ('e', 'd', 'r') and t.typowner <> %s::regrole""",
        (role,),
    ).fetchall():
        conn.execute(sql.SQL("ALTER TYPE {} OWNER TO {}").format(sql.SQL(name), ident))
    for (signature,) in conn.execute(
        """
        select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and p.proowner <> %s::regrole""",
        (role,),
    ).fetchall():
        conn.execute(sql.SQL("ALTER ROUTINE {} OWNER TO {}").format(sql.SQL(signature), ident))


def serve_postgres(data_dir: Path, port: int, app_password: str) -> int:
    """`aristobot services postgres`, in the foreground: set up, listen, then provide the application's role
    and database (the only place the superuser's password is used)."""
    ensure_port_free(port, what="embedded PostgreSQL")
    user = init_postgres(data_dir)
    print(f"embedded PostgreSQL on 127.0.0.1:{port}, data in {data_dir}", file=sys.stderr, flush=True)
    process = start_server(postgres_command(data_dir, port), user=user)
    forward_stop_signals(process)
    try:
        provision_app_database(data_dir, port, app_password)
    except Exception as exc:  # noqa: BLE001 - any failure: say so in one line and stop the server
        print(f"embedded PostgreSQL: could not set up the application's role: {exc}", file=sys.stderr, flush=True)
        process.send_signal(signal.SIGINT)
        process.wait()
        return 1
    return process.wait()
