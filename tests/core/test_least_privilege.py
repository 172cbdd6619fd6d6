"""The embedded servers give nothing away to a local process without the passwords: the suite's own
PostgreSQL and Redis are set up exactly as `make run` sets up the embedded ones (tests/conftest.py)."""

from __future__ import annotations

import os
import pwd
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redis
import requests

from core.infra.embedded_pg import (
    init_postgres,
    postgres_command,
    provision_app_database,
    socket_dir,
    superuser_password_file,
)
from core.infra.embedded_services import redis_command, start_server
from core.processes import GENERATED_KEYS, ensure_env_file
from tests.conftest import (
    PG_APP_PASSWORD,
    PG_APP_ROLE,
    PG_DATA_DIR,
    PG_DATABASE,
    PG_PORT,
    REDIS_DATA_DIR,
    REDIS_PASSWORD,
    REDIS_PORT,
    ROOT,
    process_env,
)
from tests.support import free_port, remember_secret


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _connect(**params) -> psycopg.Connection:
    return psycopg.connect(connect_timeout=3, autocommit=True, **params)


@pytest.mark.parametrize("host", ["127.0.0.1", "socket"])
def test_superuser_without_password_is_refused_over_tcp_and_socket(infra, host):
    host = str(socket_dir(PG_DATA_DIR)) if host == "socket" else host
    for password in (None, "wrong-password"):
        with pytest.raises(psycopg.OperationalError) as refused:
            _connect(
                host=host,
                port=PG_PORT,
                user="postgres",
                dbname="postgres",
                **({"password": password} if password else {}),
            )
        assert "password" in str(refused.value)
    password = superuser_password_file(PG_DATA_DIR).read_text().strip()
    with _connect(host=host, port=PG_PORT, user="postgres", dbname="postgres", password=password) as conn:
        assert conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone() == (True,)


def test_app_role_owns_its_database_and_is_not_a_superuser(infra):
    with _connect(
        host="127.0.0.1", port=PG_PORT, user=PG_APP_ROLE, dbname=PG_DATABASE, password=PG_APP_PASSWORD
    ) as conn:
        flags = conn.execute(
            "select rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
            "from pg_roles where rolname = current_user"
        ).fetchone()
        assert flags == (False, False, False, False, False)
        assert conn.execute(
            "select pg_has_role(current_user, 'pg_execute_server_program', 'member'), "
            "pg_has_role(current_user, 'pg_read_server_files', 'member')"
        ).fetchone() == (False, False)
        assert conn.execute(
            "select pg_get_userbyid(datdba) from pg_database where datname = current_database()"
        ).fetchone() == (PG_APP_ROLE,)
        assert conn.execute("select tableowner from pg_tables where tablename = 'alembic_version'").fetchone() == (
            PG_APP_ROLE,
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY (select 1) TO PROGRAM 'true'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select pg_read_file('/etc/passwd')")


def test_postgres_files_and_socket_directory_are_private(infra):
    pg_user = pwd.getpwnam("pgserver").pw_uid if os.geteuid() == 0 else os.geteuid()
    for directory in (PG_DATA_DIR, socket_dir(PG_DATA_DIR)):
        assert _mode(directory) == 0o700 and directory.stat().st_uid == pg_user
    secret = superuser_password_file(PG_DATA_DIR)
    assert _mode(secret) == 0o600 and _mode(secret.parent) == 0o700 and secret.stat().st_uid == os.geteuid()
    assert _mode(PG_DATA_DIR.parent) & 0o007 == 0  # the var directory: nothing for other accounts
    assert "trust" not in (PG_DATA_DIR / "pg_hba.conf").read_text()


def test_redis_refuses_clients_without_the_password_and_keeps_its_files_private(redis_client):
    for password in (None, "wrong-password"):
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=REDIS_PORT, password=password, socket_timeout=3).set("probe", "1")
    redis_client.set("least-privilege-probe", "1")
    assert redis.Redis(port=REDIS_PORT, password=REDIS_PASSWORD).get("least-privilege-probe") == b"1"
    assert _mode(REDIS_DATA_DIR) == 0o700
    files = [path for path in REDIS_DATA_DIR.rglob("*") if path.is_file()]
    assert any("aof" in path.name for path in files)
    assert all(_mode(path) == 0o600 for path in files), {str(p): oct(_mode(p)) for p in files}


def test_redis_password_is_in_a_private_file_not_on_the_command_line(tmp_path):
    old_aof = tmp_path / "redis" / "appendonly.aof"  # written by an older release with the default umask
    old_aof.parent.mkdir()
    old_aof.write_text("*1\r\n$4\r\nPING\r\n")
    old_aof.chmod(0o644)
    command = redis_command(free_port(), tmp_path / "redis", "probe-password")
    assert _mode(old_aof) == 0o600
    assert "probe-password" not in " ".join(command)  # /proc/<pid>/cmdline is readable by every account
    config = Path(command[1])
    assert "probe-password" in config.read_text() and _mode(config) == 0o600 and _mode(config.parent) == 0o700


def test_redis_refuses_the_commands_that_lead_from_a_client_to_a_shell(redis_client):
    for command in (
        ("CONFIG", "SET", "dir", "/tmp"),
        ("CONFIG", "GET", "dir"),
        ("MODULE", "LIST"),
        ("REPLICAOF", "127.0.0.1", "1"),
        ("DEBUG", "SLEEP", "0"),
        ("ACL", "SETUSER", "x", "on"),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            redis_client.execute_command(*command)
    assert redis_client.eval("return redis.call('set', KEYS[1], ARGV[1])", 1, "acl-probe", "1")  # limiter, kombu
    assert redis_client.get("acl-probe") == "1"


def test_env_file_is_created_private_and_completed_with_new_keys(tmp_path, monkeypatch):
    (tmp_path / ".env.example").write_text((ROOT / ".env.example").read_text())
    env_path = tmp_path / ".env"
    monkeypatch.setenv("ARISTOBOT_ENV_FILE", str(env_path))
    assert ensure_env_file(tmp_path) == (True, [])
    assert _mode(env_path) == 0o600
    values = dict(
        line.split("=", 1) for line in env_path.read_text().splitlines() if "=" in line and not line.startswith("#")
    )
    assert all(len(values[name]) >= 32 for name in GENERATED_KEYS)
    assert values["FLOWER_BASIC_AUTH"].startswith("admin:")

    env_path.write_text(f"SECRET_KEY={values['SECRET_KEY']}\nFERNET_KEYS={values['FERNET_KEYS']}\n")
    env_path.chmod(0o644)  # an install from an older release
    assert ensure_env_file(tmp_path) == (False, ["POSTGRES_APP_PASSWORD", "REDIS_PASSWORD", "FLOWER_BASIC_AUTH"])
    text = env_path.read_text()
    assert _mode(env_path) == 0o600 and f"SECRET_KEY={values['SECRET_KEY']}\n" in text
    assert "REDIS_PASSWORD=" in text and ensure_env_file(tmp_path) == (False, [])


def test_an_install_that_trusted_local_connections_is_upgraded_on_start(server_home):
    """What an older release left: a trust cluster whose tables the superuser owns."""
    data_dir, port = server_home / "pg", free_port()
    user = init_postgres(data_dir)
    superuser_password_file(data_dir).unlink()
    (data_dir / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    server = start_server(
        postgres_command(data_dir, port), user=user, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        conn = _wait_connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.execute("alter role postgres password null")
        conn.execute("create database aristobot")
        conn.close()
        with _connect(host="127.0.0.1", port=port, user="postgres", dbname="aristobot") as conn:
            conn.execute(
                "create type side as enum ('buy', 'sell'); create table orders (id serial primary key, "
                "side side); create view buys as select * from orders where side = 'buy'"
            )
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)

    init_postgres(data_dir)  # what `aristobot services postgres` does before it listens
    app_password = remember_secret("app-" + os.urandom(8).hex())
    server = start_server(
        postgres_command(data_dir, port), user=user, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        provision_app_database(data_dir, port, app_password)
        provision_app_database(data_dir, port, app_password)  # idempotent
        with pytest.raises(psycopg.OperationalError):
            _connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        with _connect(host="127.0.0.1", port=port, user="aristobot", dbname="aristobot", password=app_password) as conn:
            owners = conn.execute(
                "select c.relname, pg_get_userbyid(c.relowner) from pg_class c join pg_namespace n "
                "on n.oid = c.relnamespace where n.nspname = 'public'"
            ).fetchall()
            assert owners and {owner for _name, owner in owners} == {"aristobot"}, owners
            assert conn.execute("select pg_get_userbyid(typowner) from pg_type where typname = 'side'").fetchone() == (
                "aristobot",
            )
            conn.execute("insert into orders (side) values ('buy'); alter table orders add column qty numeric")
            assert conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone() == (False,)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)

    superuser_password_file(data_dir).unlink()  # lost: the next start gives the superuser a new one
    init_postgres(data_dir)
    server = start_server(
        postgres_command(data_dir, port), user=user, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        provision_app_database(data_dir, port, app_password)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)


def _wait_connect(**params) -> psycopg.Connection:
    deadline = time.monotonic() + 30
    while True:
        try:
            return _connect(**params)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_initdb_is_never_run_with_trust(server_home):
    init_postgres(server_home / "pg")
    hba = (server_home / "pg" / "pg_hba.conf").read_text()
    assert "trust" not in hba and hba.count("scram-sha-256") == 3
    assert not list(socket_dir(server_home / "pg").iterdir()), "initdb's password file must be removed"


def test_flower_asks_for_the_generated_credentials(redis_server):
    port = free_port()
    credentials = remember_secret("admin:" + os.urandom(12).hex())
    flower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery_app",
            "flower",
            "--address=127.0.0.1",
            f"--port={port}",
            "--enable_events=False",
        ],
        cwd=ROOT,
        env=process_env(FLOWER_BASIC_AUTH=credentials),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and flower.poll() is None, "flower did not start"
                time.sleep(0.3)
        assert response.status_code == 401
        user, password = credentials.split(":", 1)
        assert requests.get(f"http://127.0.0.1:{port}/", auth=(user, "wrong"), timeout=5).status_code == 401
        assert requests.get(f"http://127.0.0.1:{port}/workers", auth=(user, password), timeout=10).status_code == 200
    finally:
        flower.terminate()
        flower.wait(30)


def test_procfile_refuses_to_start_an_open_flower():
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("flower:"))
    result = subprocess.run(
        ["sh", "-c", line.split(":", 1)[1]],
        env=process_env(FLOWER_BASIC_AUTH=""),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "FLOWER_BASIC_AUTH is not set" in result.stderr
