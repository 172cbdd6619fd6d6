"""Database engine, sessions and the declarative base. PostgreSQL only (psycopg 3)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import DateTime, MetaData, create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from core.config import get_settings

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


@lru_cache(maxsize=4)
def get_engine(url: str | None = None) -> Engine:
    return create_engine(
        url or get_settings().database_url,
        pool_pre_ping=True,  # a connection lost while Postgres restarted is replaced, not reused
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": 3},
    )


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
            log.warning("database_unreachable", extra={"retry_in_s": delay, "error": str(exc.orig)[:200],
                                                      "waiting_process": process})
            time.sleep(delay)
            delay = min(delay * 2, 3.0)
