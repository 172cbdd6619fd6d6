"""Bot ticks on a real Celery worker (subprocess, queue `bots`) against a real simulator and real candles."""

# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from core import tasks
from core.bots.ticks import due_ticks
from core.candles.candle import ClosedCandle
from core.candles.store import load_candles
from core.candles.ticks import TickHook, enqueue_due_ticks
from core.infra.db import new_session
from core.models import Bot, Order
from tests.core.bots.fixtures import (  # noqa: F401
    ALWAYS_LONG,
    FOREVER,
    RAISES,
    RAISES_LINE,
    bot_trader,
    hour_candles,
    make_bot,
)


def _tick(bot_id: int, candle_time: int, **kwargs) -> dict:
    from workers.celery_app import app

    result = tasks.send_bot_tick(bot_id, candle_time, "1h", **kwargs, app=app)
    return result.get(timeout=90)


def _orders(bot_id: int) -> list[Order]:
    with new_session() as session:
        return list(session.scalars(select(Order).where(Order.source == "bot", Order.source_ref == str(bot_id))))


def _bot(bot_id: int) -> Bot:
    with new_session() as session:
        return session.get(Bot, bot_id)


def test_the_tick_task_is_routed_to_the_bots_queue():
    from workers.celery_app import app

    assert app.amqp.router.route({}, tasks.BOT_TICK)["queue"].name == "bots"


def test_a_tick_on_real_candles_places_exactly_one_order_and_a_redelivered_tick_none(
    celery_worker_process, bot_trader, make_bot, hour_candles
):
    bot_id = make_bot(bot_trader, ALWAYS_LONG)
    first = _tick(bot_id, hour_candles[-1], issued_ms=int(time.time() * 1000))
    assert first["action"] == "enter" and len(first["order_ids"]) == 1
    [order] = _orders(bot_id)
    assert order.state == "filled" and len(bot_trader.at_sim(order.id)) == 1
    again = _tick(bot_id, hour_candles[-1])
    assert again["action"] == "duplicate" and again["order_ids"] == []
    assert len(_orders(bot_id)) == 1 and len(bot_trader.at_sim(order.id)) == 1


def test_a_strategy_that_raises_pauses_the_bot_with_type_message_and_line(
    celery_worker_process, bot_trader, make_bot, hour_candles
):
    bot_id = make_bot(bot_trader, RAISES)
    assert _tick(bot_id, hour_candles[-1])["action"] == "error"
    bot = _bot(bot_id)
    assert bot.state == "error"
    assert (bot.last_error["type"], bot.last_error["line"]) == ("ValueError", RAISES_LINE)
    assert "cannot decide" in bot.last_error["message"]
    assert _orders(bot_id) == []


def test_a_strategy_that_never_returns_times_out_and_pauses_the_bot(
    celery_worker_process, bot_trader, make_bot, hour_candles
):
    bot_id = make_bot(bot_trader, FOREVER, timeout_seconds=2)
    assert _tick(bot_id, hour_candles[-1])["action"] == "error"
    bot = _bot(bot_id)
    assert bot.state == "error" and bot.last_error["type"] in ("Timeout", "CpuTimeLimit")


def test_the_feeds_hook_enqueues_the_tick_for_a_running_bot_and_not_for_a_paused_one(
    celery_worker_process, bot_trader, make_bot, hour_candles, redis_client
):
    from core.infra.bus import task_sender

    running = make_bot(bot_trader, ALWAYS_LONG)
    paused = make_bot(bot_trader, ALWAYS_LONG, start=False)
    with new_session() as session:
        [stored] = load_candles(
            session.connection(), "sim", "BTCUSDT", "1h", start_ms=hour_candles[-1], end_ms=hour_candles[-1]
        )
    candle = ClosedCandle(
        "sim", "BTCUSDT", "1h", stored.open_time, stored.open, stored.high, stored.low, stored.close, stored.volume
    )
    hook = TickHook(due_ticks, task_sender().send_task)
    sent = enqueue_due_ticks([candle], redis_client, hook)
    mine = {tick.args[0] for tick in sent} & {running, paused}
    assert mine == {running}
    # The same close seen again (a feed reconnect) enqueues nothing more.
    assert not {tick.args[0] for tick in enqueue_due_ticks([candle], redis_client, hook)} & mine
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _orders(running):
        time.sleep(0.2)
    [order] = _orders(running)
    assert order.side == "buy" and _orders(paused) == []


@pytest.mark.slow
def test_a_bots_worker_warms_the_sandbox_of_every_running_bot_so_no_tick_starts_one(bot_trader, make_bot, hour_candles):
    from core.bots.spec import running_specs
    from workers import bots as bot_tasks

    running = make_bot(bot_trader, ALWAYS_LONG)
    paused = make_bot(bot_trader, ALWAYS_LONG, start=False)
    try:
        assert bot_tasks.warm_running_bots() >= 1
        warm = {key[0]: sandbox for key, sandbox in bot_tasks._sandboxes.items()}
        assert paused not in warm and warm[running].starts == 1
        with new_session() as session:
            [spec] = [s for s in running_specs(session) if s.bot_id == running]
            candles = load_candles(
                session.connection(), "sim", "BTCUSDT", "1h", end_ms=hour_candles[-1], limit=50, newest=True
            )
        rows = [[c.open_time, str(c.open), str(c.high), str(c.low), str(c.close), str(c.volume)] for c in candles]
        assert bot_tasks.decide(spec, rows, None)["enter"] == "long"
        assert bot_tasks.sandbox_for(spec) is warm[running] and warm[running].starts == 1
    finally:
        for sandbox in list(bot_tasks._sandboxes.values()):
            sandbox.close()
        bot_tasks._sandboxes.clear()
