"""Journey: a trader creates a bot in the web app on a strategy that buys and then sells, starts it; two candle
closes go through the feeds hook to a real Celery worker, which trades on a real simulator; the bot page shows
the decisions, both orders, a flat position and the realized P&L from the fills ledger."""

# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
from __future__ import annotations

import re
import time
from decimal import Decimal

from sqlalchemy import select

from core.bots.ticks import due_ticks
from core.candles.candle import ClosedCandle
from core.candles.store import load_candles
from core.candles.ticks import TickHook, enqueue_due_ticks
from core.infra.bus import task_sender
from core.infra.db import new_session, session_scope
from core.models import Bot, BotTick, Order
from core.strategies import store as strategy_store
from tests.core.bots.fixtures import LONG_THEN_EXIT, hour_candles  # noqa: F401
from tests.support import csrf_token_from
from tests.trading_support import make_trader


def _close(open_time: int) -> ClosedCandle:
    with new_session() as session:
        [candle] = load_candles(session.connection(), "sim", "BTCUSDT", "1h", start_ms=open_time, end_ms=open_time)
    return candle


def _wait_for_ticks(bot_id: int, count: int, timeout: float = 90) -> list[BotTick]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with new_session() as session:
            ticks = list(session.scalars(select(BotTick).where(BotTick.bot_id == bot_id).order_by(BotTick.candle_time)))
            orders = list(session.scalars(select(Order).where(Order.source == "bot", Order.source_ref == str(bot_id))))
            # Settled: final, and its fills in the ledger (the worker fetches them right after the fill).
            pending = [o for o in orders if o.state != "filled" or sum(f.quantity for f in o.fills) < o.filled_quantity]
        if len(ticks) >= count and not pending:
            return ticks
        time.sleep(0.2)
    raise AssertionError(f"bot {bot_id} ticked {len(ticks)} times, expected {count}")


def test_a_bot_buys_on_one_close_and_sells_on_the_next_and_the_page_shows_the_pnl(
    client, logged_in, sim, hour_candles, celery_worker_process, redis_client
):
    trader = make_trader(lambda: (logged_in, None), sim)
    with session_scope() as session:
        version_id = strategy_store.create_strategy(session, logged_in.id, "Round trip", code=LONG_THEN_EXIT).latest.id
    token = csrf_token_from(client.get("/bots/").get_data(as_text=True))
    response = client.post(
        "/bots/",
        data={
            "csrf_token": token,
            "name": "round trip",
            "strategy_version_id": version_id,
            "broker_id": trader.broker_id,
            "symbol": "BTCUSDT",
            "timeframe": "1h",
            "params": '{"size": 0.2}',
            "candles_needed": "200",
            "timeout_seconds": "10",
            "start_now": "y",
        },
    )
    assert response.status_code == 302
    with new_session() as session:
        bot = session.scalar(select(Bot).where(Bot.user_id == logged_in.id))
    assert bot.state == "running"
    try:
        hook = TickHook(due_ticks, task_sender().send_task)
        assert [t.args[0] for t in enqueue_due_ticks([_close(hour_candles[-2])], redis_client, hook)].count(bot.id) == 1
        (entry_tick,) = _wait_for_ticks(bot.id, 1)
        assert entry_tick.action == "enter"
        assert [t.args[0] for t in enqueue_due_ticks([_close(hour_candles[-1])], redis_client, hook)].count(bot.id) == 1
        _, exit_tick = _wait_for_ticks(bot.id, 2)
        assert exit_tick.action == "exit"
        with new_session() as session:
            orders = list(
                session.scalars(
                    select(Order).where(Order.source == "bot", Order.source_ref == str(bot.id)).order_by(Order.id)
                )
            )
            for order in orders:
                order.fills  # noqa: B018 - load them before the session closes
        assert [(o.side, o.state) for o in orders] == [("buy", "filled"), ("sell", "filled")]
        for order in orders:
            assert len(trader.at_sim(order.id)) == 1
        spent = orders[0].filled_quantity * orders[0].average_price
        assert abs(spent - trader_quote_share(0.2)) / trader_quote_share(0.2) < 0.01

        page = client.get(f"/bots/{bot.id}").get_data(as_text=True)
        fills = sum(len(order.fills) for order in orders)
        assert fills >= 2 and f"{fills} fills" in page
        # Flat again: at most the dust of the step rounding and the base-asset fee is left.
        held = Decimal(re.search(r'id="bot-position">([0-9.E-]+) BTC<', page).group(1))
        assert 0 <= held < orders[0].filled_quantity * Decimal("0.01")
        assert f"#{orders[0].id}" in page and f"#{orders[1].id}" in page
        assert "buy" in page and "sell" in page
    finally:
        with session_scope() as session:
            session.get(Bot, bot.id).state = "paused"


def trader_quote_share(fraction: float):
    """make_trader funds 100000 USDT; the bot buys `fraction` of it (less the price headroom)."""
    return Decimal("100000") * Decimal(str(fraction))
