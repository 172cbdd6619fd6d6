"""A bot's take-profit ladder (core/bots/bot_orders.py through core/orders/ladder.py): one sell per rung of the
strategy's take_profit_ladder(), its target measured from the entry's fill price, each an OCO with the stop
when there is one, all recorded under the bot; a ladder the venue would refuse leaves the stop alone, noted on
the bot; a bad ladder stops the bot before anything is ordered."""

# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from sqlalchemy import select

from core.bots.runner import run_tick
from core.exchanges.rules import round_to_step
from core.infra.db import new_session
from core.models import Bot, BotTick, Order
from core.strategies.sandbox import SandboxLimits, WarmSandbox
from tests.core.bots.fixtures import bot_trader, hour_candles, make_bot  # noqa: F401

TICK = Decimal("0.01")  # the simulator's BTCUSDT tick


def ladder_strategy(rungs: str, stop_price: float | None = None, size: float = 0.05, exits: bool = False) -> str:
    stop = f"\n    def stop_loss(self):\n        return {stop_price}\n" if stop_price is not None else ""
    return f"""from core.strategies import Strategy


class Ladder(Strategy):
    def should_long(self):
        return True

    def should_exit(self):
        return {exits}

    def position_size(self):
        return {size}

    def take_profit_ladder(self):
        return {rungs}
{stop}"""


def _decide(spec, candles, position):
    with WarmSandbox(spec.code, limits=SandboxLimits(cpu_seconds=5, wall_seconds=15)) as sandbox:
        return sandbox.decide(candles, params=spec.params, position=position)


def _orders(bot_id: int) -> list[Order]:
    with new_session() as session:
        query = select(Order).where(Order.source == "bot", Order.source_ref == str(bot_id)).order_by(Order.id)
        return list(session.scalars(query))


def _bot(bot_id: int) -> Bot:
    with new_session() as session:
        return session.get_one(Bot, bot_id)


def test_a_ladder_with_a_stop_goes_on_as_one_oco_per_rung_from_the_fill_price(bot_trader, make_bot, hour_candles, sim):
    stop = round(float(sim.state.last_price("BTCUSDT")) * 0.8, 2)
    bot_id = make_bot(bot_trader, ladder_strategy("[(5, 30), (2, 70)]", stop_price=stop))
    assert run_tick(bot_id, hour_candles[-1], "1h", _decide).action == "enter"
    entry, *rungs = _orders(bot_id)
    assert entry.state == "filled" and len(rungs) == 2
    fill = entry.average_price
    # nearest first, as the backtest fills them: +2 % for 70 %, then +5 % for the rest
    assert [r.price for r in rungs] == [
        round_to_step(fill * Decimal(f"1.0{pct}"), TICK, ROUND_HALF_EVEN) for pct in (2, 5)
    ]
    assert {(r.type, r.side, r.stop_price, r.state) for r in rungs} == {("oco", "sell", Decimal(str(stop)), "open")}
    assert len({r.ladder_group for r in rungs}) == 1 and rungs[0].ladder_group.startswith("ladder:")
    total = sum(r.quantity for r in rungs)
    assert total <= entry.filled_quantity and rungs[0].quantity <= total * Decimal("0.7") < rungs[1].quantity * 3
    assert all(bot_trader.at_sim(r.id) for r in rungs)  # placed at the venue
    assert _bot(bot_id).pending_protection is None
    with new_session() as session:
        tick = session.scalar(select(BotTick).where(BotTick.bot_id == bot_id))
        assert tick.decision["take_profit_ladder"] == [[5, 30], [2, 70]]


def test_a_ladder_without_a_stop_rests_as_limit_sells(bot_trader, make_bot, hour_candles):
    bot_id = make_bot(bot_trader, ladder_strategy("[(1, 50), (3, 50)]"))
    assert run_tick(bot_id, hour_candles[-1], "1h", _decide).action == "enter"
    entry, *rungs = _orders(bot_id)
    assert [(r.type, r.side, r.stop_price, r.state) for r in rungs] == [("limit", "sell", None, "open")] * 2
    assert rungs[0].price < rungs[1].price and sum(r.quantity for r in rungs) <= entry.filled_quantity


def test_a_ladder_the_venue_would_refuse_leaves_the_stop_alone_and_says_why(bot_trader, make_bot, hour_candles, sim):
    stop = round(float(sim.state.last_price("BTCUSDT")) * 0.8, 2)
    rungs = "[(1, 0.2), (2, 0.3), (3, 99.5)]"  # 0.2 % of 1,000 USDT is below the venue's 5 USDT minimum
    bot_id = make_bot(bot_trader, ladder_strategy(rungs, stop_price=stop, size=0.01))
    assert run_tick(bot_id, hour_candles[-1], "1h", _decide).action == "enter"
    entry, protection = _orders(bot_id)
    assert (protection.type, protection.stop_price, protection.state) == ("stop_loss", Decimal(str(stop)), "open")
    bot = _bot(bot_id)
    assert bot.state == "running"
    assert bot.last_error["message"].startswith("take-profit ladder not placed: rung 1 (0.2 % = ")
    assert "below the BTCUSDT minimum" in bot.last_error["message"]


def test_an_exit_signal_takes_the_rungs_off_then_sells_what_is_left(bot_trader, make_bot, hour_candles, sim):
    stop = round(float(sim.state.last_price("BTCUSDT")) * 0.8, 2)
    bot_id = make_bot(bot_trader, ladder_strategy("[(2, 50), (5, 50)]", stop_price=stop, exits=True))
    assert run_tick(bot_id, hour_candles[-2], "1h", _decide).action == "enter"
    assert run_tick(bot_id, hour_candles[-1], "1h", _decide).action == "exit"
    entry, *rungs, sell = _orders(bot_id)
    assert [(r.type, r.state) for r in rungs] == [("oco", "cancelled")] * 2
    assert (sell.type, sell.side, sell.state) == ("market", "sell", "filled")
    assert sell.filled_quantity == sum(r.quantity for r in rungs)


@pytest.mark.parametrize(
    ("rungs", "says"),
    [
        ("[(2, 50), (5, 40)]", "rung sizes adding up to 100 (%), not 90"),
        ("[(2, 100)]", "a list of 2 to 10 rungs"),
        ("[(0, 50), (5, 50)]", "rung 1's pct_above_entry is 0"),
    ],
)
def test_a_bad_ladder_stops_the_bot_and_orders_nothing(bot_trader, make_bot, hour_candles, rungs, says):
    bot_id = make_bot(bot_trader, ladder_strategy(rungs))
    result = run_tick(bot_id, hour_candles[-1], "1h", _decide)
    assert result.action == "error" and _orders(bot_id) == []
    bot = _bot(bot_id)
    assert bot.state == "error" and bot.last_error["message"].startswith("take_profit_ladder() at candle")
    assert says in bot.last_error["message"]
