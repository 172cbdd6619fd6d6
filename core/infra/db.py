"""Database engine, sessions and the declarative base. PostgreSQL only (psycopg 3)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import DateTime, MetaData, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from core.infra.config import get_settings

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: DateTime(timezone=True)}


def utcnow() -> datetime:
    return datetime.now(UTC)


# A pooled connection idle for longer than this is pinged before use, so one lost while Postgres
# restarted is replaced, not reused. One in use moments ago is not: a ping on every checkout was a
# seventh of the statements on the order path. (A restart inside this window costs one failed
# statement, after which SQLAlchemy replaces the whole pool.)
PING_AFTER_IDLE_S = 1.0


@lru_cache(maxsize=4)
def get_engine(url: str | None = None) -> Engine:
    engine = create_engine(
        url or get_settings().database_url,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": 3},
    )
    ping_when_idle(engine)
    if os.getpriority(os.PRIO_PROCESS, 0) > 0:
        share_priority_with_database(engine)
    return engine


def share_priority_with_database(engine: Engine) -> None:
    """Give each new connection's Postgres backend this process's CPU priority (nice).

    The Procfile runs the workers niced so that receiving alerts and serving pages win the CPU over
    working off a backlog; without this the backlog's queries still ran at full priority in Postgres.
    Only for a Postgres on this machine, and only a process that really is a postgres backend."""
    if engine.url.host not in (None, "", "localhost", "127.0.0.1", "::1"):
        return

    @event.listens_for(engine, "connect")
    def _renice_backend(dbapi_connection, _record) -> None:
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("select pg_backend_pid()")
                backend = cursor.fetchone()[0]
            dbapi_connection.rollback()
            with open(f"/proc/{backend}/comm") as comm:
                if "postgres" not in comm.read():
                    return
            os.setpriority(os.PRIO_PROCESS, backend, os.getpriority(os.PRIO_PROCESS, 0))
        except OSError as exc:  # another user's or host's Postgres: it keeps its priority
            log.info("database_priority_not_shared", extra={"error": str(exc)[:200]})


def ping_when_idle(engine: Engine, idle_s: float = PING_AFTER_IDLE_S) -> None:
    """Pre-ping pooled connections that sat idle for more than `idle_s` (see PING_AFTER_IDLE_S)."""

    @event.listens_for(engine, "checkin")
    def _note_checkin(_dbapi_connection, record) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at <= idle_s:
            return  # a fresh connection, or one in use moments ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool discards this connection and checks out another
            raise DisconnectionError(str(exc)) from exc


@lru_cache(maxsize=4)
def _session_factory(url: str | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work: committed on success, rolled back on any exception."""
    session = _session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def new_session() -> Session:
    return _session_factory()()


def ping_database(engine: Engine | None = None) -> None:
    with (engine or get_engine()).connect() as conn:
        conn.execute(text("select 1"))


def wait_for_database(timeout: float = 60.0, process: str = "", server_only: bool = False) -> None:
    """Block until Postgres answers, logging each failed attempt (start-up order is not guaranteed).

    `server_only` waits for the server itself (its `postgres` database), before ours is created."""
    engine = get_engine()
    if server_only:
        engine = create_engine(engine.url.set(database="postgres"), connect_args={"connect_timeout": 3})
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        try:
            ping_database(engine)
            return
        except OperationalError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning(
                "database_unreachable",
                extra={"retry_in_s": delay, "error": str(exc.orig)[:200], "waiting_process": process},
            )
            time.sleep(delay)
            delay = min(delay * 2, 3.0)
