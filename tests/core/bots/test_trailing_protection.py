"""A bot's trailing stop where the venue runs none (core/bots/bot_orders.py, core/orders/trailing_watch.py): the
entry's protection is the same trailing_stop order, kept `new` and watched by Aristobot, then sent at market
once the heartbeat's price crosses its trail; the strategy's exit takes it off, never sent, before selling."""

# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.bots.runner import run_tick
from core.infra.bus import book_key
from core.infra.db import new_session, session_scope
from core.models import Order, TrailingWatch
from core.orders import placement, trailing_watch
from core.strategies.sandbox import SandboxLimits, WarmSandbox
from sim.spot.market import DEFAULT_SYMBOLS
from tests.core.bots.fixtures import bot_trader, hour_candles, make_bot, trailing_strategy  # noqa: F401


@pytest.fixture(scope="module")
def sim_options():
    # BTCUSDT without allowTrailingStop: its trailing stops are emulated.
    return {"symbols": tuple(replace(s, trailing_stop=s.symbol != "BTCUSDT") for s in DEFAULT_SYMBOLS)}


def _decide(spec, candles, position):
    with WarmSandbox(spec.code, limits=SandboxLimits(cpu_seconds=5, wall_seconds=15)) as sandbox:
        return sandbox.decide(candles, params=spec.params, position=position)


def _heartbeat(redis_client, price: Decimal) -> None:
    book = {"bid": str(price), "ask": str(price), "symbol": "BTCUSDT"}  # the feeds' top of book for the heartbeat
    redis_client.set(book_key("sim", "BTCUSDT"), json.dumps(book))


def test_a_bots_trailing_stop_is_watched_where_the_venue_has_none_then_sold_at_market(
    bot_trader, make_bot, hour_candles, sim, redis_client
):
    bot_id = make_bot(bot_trader, trailing_strategy(2))
    assert run_tick(bot_id, hour_candles[-1], "1h", _decide).action == "enter"
    with new_session() as session:
        entry, stop = session.scalars(
            select(Order).where(Order.source == "bot", Order.source_ref == str(bot_id)).order_by(Order.id)
        ).all()
        assert (stop.type, stop.trail_pct, stop.state) == ("trailing_stop", Decimal("2"), "new")
        assert session.get(TrailingWatch, stop.id) is not None and bot_trader.at_sim(stop.id) == []
        quantity = stop.quantity
    price = sim.state.last_price("BTCUSDT")
    sent: list[int] = []
    _heartbeat(redis_client, price)
    # Other tests' watches may share the database (and this heartbeat): only this stop's fate is asserted.
    assert stop.id not in trailing_watch.watch_pass(sent.append)
    _heartbeat(redis_client, price * Decimal("0.97"))  # 3 % below the best price since the protection
    assert stop.id in trailing_watch.watch_pass(sent.append) and sent.count(stop.id) == 1
    assert placement.place(stop.id).state == "filled"
    [at_venue] = bot_trader.at_sim(stop.id)
    assert (at_venue.type.value, at_venue.side.value) == ("MARKET", "SELL")
    assert Decimal(0) <= quantity - at_venue.quantity < Decimal("0.0001")  # the position, down to BTCUSDT's step
    with session_scope() as session:
        done = session.get_one(Order, stop.id)
        assert (done.type, done.state, done.filled_quantity) == ("trailing_stop", "filled", at_venue.quantity)


TRAIL_THEN_EXIT = """from core.strategies import Strategy


class TrailThenExit(Strategy):
    def should_long(self):
        return True

    def should_exit(self):
        return True

    def position_size(self):
        return 0.05

    def trailing_stop(self):
        return 2
"""


def test_an_exit_signal_takes_the_watched_trailing_stop_off_before_selling(
    bot_trader, make_bot, hour_candles, sim, redis_client
):
    bot_id = make_bot(bot_trader, TRAIL_THEN_EXIT)
    assert run_tick(bot_id, hour_candles[-2], "1h", _decide).action == "enter"
    assert run_tick(bot_id, hour_candles[-1], "1h", _decide).action == "exit"
    with new_session() as session:
        _, stop, sell = session.scalars(
            select(Order).where(Order.source == "bot", Order.source_ref == str(bot_id)).order_by(Order.id)
        ).all()
        assert (stop.type, stop.state) == ("trailing_stop", "cancelled")
        assert (sell.type, sell.side, sell.state) == ("market", "sell", "filled")
    _heartbeat(redis_client, sim.state.last_price("BTCUSDT") * Decimal("0.5"))  # far through the trail: nothing
    assert stop.id not in trailing_watch.watch_pass(lambda _: None)
    assert bot_trader.at_sim(stop.id) == []  # never sent: the sell at market was the only exit
