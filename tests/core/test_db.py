"""The engine's connection handling: idle connections are checked, niced processes stay niced in Postgres."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from core.infra.db import get_engine, ping_when_idle
from tests.conftest import process_env

BACKEND_PID = text("select pg_backend_pid()")


def _kill_backend(pid: int) -> None:
    with get_engine().connect() as admin:
        admin.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
        admin.commit()


def _engine(idle_s: float):
    engine = create_engine(get_engine().url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_s)
    return engine


def test_a_connection_lost_while_idle_is_replaced_before_use(infra):
    engine = _engine(idle_s=0.05)
    with engine.connect() as conn:
        first = conn.execute(BACKEND_PID).scalar()
    _kill_backend(first)  # what a Postgres restart does to every pooled connection
    time.sleep(0.1)
    with engine.connect() as conn:
        second = conn.execute(BACKEND_PID).scalar()
    assert second != first
    engine.dispose()


def test_a_connection_used_moments_ago_is_not_pinged_and_a_loss_then_fails_once(infra):
    engine = _engine(idle_s=60)
    with engine.connect() as conn:
        first = conn.execute(BACKEND_PID).scalar()
    _kill_backend(first)
    with pytest.raises(OperationalError), engine.connect() as conn:
        conn.execute(BACKEND_PID)
    with engine.connect() as conn:  # the failure invalidated the pool: a fresh connection
        assert conn.execute(BACKEND_PID).scalar() != first
    engine.dispose()


def test_a_niced_process_gets_its_postgres_backend_niced_too(infra):
    script = (
        "import os; os.nice(7)\n"
        "from sqlalchemy import text\n"
        "from core.infra.db import get_engine\n"
        "with get_engine().connect() as conn:\n"
        "    print(conn.execute(text('select pg_backend_pid()')).scalar())\n"
        "    input()\n"
    )  # keeps the backend alive while the test looks at it
    child = subprocess.Popen(
        [sys.executable, "-c", script], env=process_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        backend = int(child.stdout.readline())
        with open(f"/proc/{backend}/stat") as stat:
            nice = int(stat.read().rsplit(")", 1)[1].split()[16])
        assert nice == 7
    finally:
        child.communicate("\n", timeout=10)
