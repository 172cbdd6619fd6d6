"""The backtest task on a real Celery worker process: queued runs finish, a failing strategy fails only its run."""

from __future__ import annotations

import time

import pytest

from core.backtest import run_lifecycle, run_params
from core.models import BacktestRun
from tests.backtest_support import failing_strategy, insert_candles, make_strategy, read_rows

ROWS = read_rows(limit=1500)


@pytest.fixture()
def trader(make_user, db_session):
    insert_candles(db_session, ROWS)
    return make_user()[0]


def queue(db_session, user_id: int, version, **changes) -> int:
    request = run_params.RunRequest(
        strategy_version_id=version.id,
        venue="binance",
        symbol="BTCUSDT",
        timeframe="1h",
        start_ms=int(ROWS[0][0]),
        end_ms=int(ROWS[-1][0]),
        **changes,
    )
    run = run_lifecycle.create_run(db_session, user_id, request)
    db_session.commit()
    from workers.celery_app import app

    assert run_lifecycle.enqueue_run(app, run.id)
    return run.id


def wait_finished(db_session, run_id: int, timeout: float = 60) -> BacktestRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db_session.expire_all()
        run = db_session.get(BacktestRun, run_id)
        if run.finished:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} still {run.status} ({run.stage}) after {timeout} s")


def test_worker_runs_a_queued_backtest_and_a_failing_one_beside_it(celery_worker_process, db_session, trader):
    good = queue(db_session, trader.id, make_strategy(db_session, trader.id))
    bad = queue(db_session, trader.id, make_strategy(db_session, trader.id, code=failing_strategy(700)))
    done, failed = wait_finished(db_session, good), wait_finished(db_session, bad)
    assert (done.status, done.progress) == ("done", 100) and done.metrics["num_trades"] == len(done.trades) > 0
    assert done.task_id and done.started_at and done.finished_at
    assert failed.status == "failed" and "ZeroDivisionError" in failed.error["message"]
    assert failed.error["candle_time"].startswith("2017-09-")
    again = queue(db_session, trader.id, make_strategy(db_session, trader.id))
    assert wait_finished(db_session, again).status == "done", "the worker survived the failing strategy"


def test_worker_runs_a_grid_as_one_job(celery_worker_process, db_session, trader):
    version = make_strategy(db_session, trader.id)
    run_id = queue(db_session, trader.id, version, grid={"fast": [5, 10], "slow": [20, 40]}, grid_metric="sharpe")
    run = wait_finished(db_session, run_id)
    assert run.status == "done" and len(run.grid_results) == 4
    assert {(r["params"]["fast"], r["params"]["slow"]) for r in run.grid_results} == {
        (5, 20),
        (5, 40),
        (10, 20),
        (10, 40),
    }


def test_unreachable_broker_fails_the_run_with_a_clear_error(db_session, trader):
    from celery import Celery

    version = make_strategy(db_session, trader.id)
    request = run_params.RunRequest(strategy_version_id=version.id, venue="binance", symbol="BTCUSDT", timeframe="1h")
    run = run_lifecycle.create_run(db_session, trader.id, request)
    db_session.commit()
    from tests.support import free_port

    offline = Celery("offline", broker=f"redis://127.0.0.1:{free_port()}/0")
    offline.conf.broker_connection_retry = False
    offline.conf.broker_connection_max_retries = 0
    offline.conf.broker_transport_options = {"max_retries": 0, "socket_connect_timeout": 0.5}
    assert run_lifecycle.enqueue_run(offline, run.id) is None
    db_session.expire_all()
    failed = db_session.get(BacktestRun, run.id)
    assert failed.status == "failed" and failed.error["type"] == "QueueUnavailable"
