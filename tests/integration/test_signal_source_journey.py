"""Journey: a trader creates a bot that executes on one venue and takes its signals from another. The bot trades
BTCUSDT on the simulator (the only venue that executes orders in tests: the simulator speaks Binance's face)
and its signal source is Kraken: the form maps BTCUSDT to Kraken's XBTUSD through the symbol table. A loopback
Kraken (documented v2 `ohlc` frames and REST OHLC) feeds the real feed pipeline, whose closes tick the bot on a
real Celery worker; the order fills on the simulator. The page shows both routes and warns that Kraken is not a
configured heartbeat source."""

from __future__ import annotations

import time

from sqlalchemy import select

from core.bots.ticks import due_ticks
from core.candles.ticks import TickHook
from core.infra.bus import task_sender
from core.infra.db import new_session, session_scope
from core.models import Bot, BotTick, Order
from core.strategies import store as strategy_store
from tests.core.bots.fixtures import ALWAYS_LONG
from tests.feeds.conftest import run_feed, wait_until  # noqa: F401 - run_feed is a fixture
from tests.feeds.documented_venue import DocumentedVenue, kraken_ohlc
from tests.support import csrf_token_from
from tests.trading_support import make_trader

MINUTE = 60_000


def _ticks(bot_id: int) -> list[BotTick]:
    with new_session() as session:
        return list(session.scalars(select(BotTick).where(BotTick.bot_id == bot_id).order_by(BotTick.candle_time)))


def test_a_bot_on_the_simulator_driven_by_kraken_candles_ticks_and_fills(
    client,
    logged_in,
    sim,
    celery_worker_process,
    redis_client,
    run_feed,  # noqa: F811
):
    trader = make_trader(lambda: (logged_in, None), sim)
    with session_scope() as session:
        version_id = strategy_store.create_strategy(session, logged_in.id, "Long", code=ALWAYS_LONG).latest.id
    token = csrf_token_from(client.get("/bots/").get_data(as_text=True))
    form = {
        "csrf_token": token,
        "name": "kraken-driven",
        "strategy_version_id": version_id,
        "broker_id": trader.broker_id,
        "symbol": "BTCUSDT",
        "timeframe": "1m",
        "source_venue": "kraken",
        "source_symbol": "",
        "params": '{"size": 0.1}',
        "candles_needed": "50",
        "timeout_seconds": "10",
        "start_now": "y",
    }
    assert client.post("/bots/", data=form).status_code == 302
    with new_session() as session:
        bot = session.scalar(select(Bot).where(Bot.user_id == logged_in.id))
    assert (bot.venue, bot.symbol, bot.source_venue, bot.source_symbol) == ("sim", "BTCUSDT", "kraken", "XBTUSD")
    page = client.get(f"/bots/{bot.id}").get_data(as_text=True)
    assert "Executes on <strong>sim BTCUSDT</strong>" in page and ">kraken XBTUSD 1m<" in page
    assert "kraken is not a heartbeat source" in page

    now_minute = int(time.time() * 1000) // MINUTE * MINUTE
    kraken = DocumentedVenue(
        "kraken", listed={"BTC/USD"}, rest_rows={"XBTUSD": [now_minute - i * MINUTE for i in range(240, 0, -1)]}
    )
    kraken.start()
    hook = TickHook(due_ticks, task_sender().send_task)
    try:
        with run_feed(
            f"ws://{kraken.url}/ws", f"http://{kraken.url}", ["XBTUSD"], venue="kraken", tick_hook=hook
        ) as feed:
            # The REST backfill ends with the minute that just closed: fresh enough to tick the bot.
            wait_until(lambda: any(t.action == "enter" for t in _ticks(bot.id)), timeout=60)
            wait_until(lambda: "BTC/USD" in kraken.subscribed)
            kraken.push(kraken_ohlc("snapshot", now_minute))
            kraken.push(kraken_ohlc("update", now_minute + MINUTE))  # the live close of `now_minute`
            wait_until(lambda: now_minute in [t.candle_time for t in _ticks(bot.id)], timeout=60)
            assert feed.pipeline.stats.ticks_sent >= 2
        entry = next(t for t in _ticks(bot.id) if t.action == "enter")
        with new_session() as session:
            order = session.get(Order, entry.order_ids[0])
        wait_until(lambda: trader.reload(order.id).state == "filled", timeout=30)
        assert order.symbol == "BTCUSDT" and order.side == "buy" and len(trader.at_sim(order.id)) == 1
        page = client.get(f"/bots/{bot.id}").get_data(as_text=True)
        assert f"#{order.id}" in page and "Last tick: never" not in page
    finally:
        kraken.stop()
        with session_scope() as session:
            session.get(Bot, bot.id).state = "paused"
