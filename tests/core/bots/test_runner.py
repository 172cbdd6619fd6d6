"""One tick end to end, in this process: real candles from Postgres, a real warm sandbox, a real simulator."""

# ruff: noqa: F811  (fixtures imported from tests.core.bots.fixtures are parameters here)
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from core.bots.runner import run_tick
from core.bots.spec import BotSpec
from core.infra.db import new_session, session_scope
from core.models import Bot, BotTick, Order
from core.strategies.sandbox import SandboxLimits, WarmSandbox
from tests.core.bots.fixtures import (  # noqa: F401
    ALWAYS_LONG,
    FOREVER,
    LONG_THEN_EXIT,
    RAISES,
    RAISES_LINE,
    bot_trader,
    hour_candles,
    make_bot,
    stops_strategy,
    trailing_strategy,
)
from tests.notification_support import notifications_of


@pytest.fixture()
def decider():
    """decide() over real warm sandboxes, one per (bot, version), closed after the test."""
    sandboxes: dict[tuple, WarmSandbox] = {}

    def decide(spec: BotSpec, candles, position):
        key = (spec.bot_id, spec.version_id)
        if key not in sandboxes:
            limits = SandboxLimits(cpu_seconds=spec.timeout_seconds, wall_seconds=spec.timeout_seconds)
            sandboxes[key] = WarmSandbox(spec.code, limits=limits)
        return sandboxes[key].decide(candles, params=spec.params, position=position)

    yield decide
    for sandbox in sandboxes.values():
        sandbox.close()


def _bot(bot_id: int) -> Bot:
    with new_session() as session:
        return session.get(Bot, bot_id)


def _orders(bot_id: int) -> list[Order]:
    with new_session() as session:
        return list(
            session.scalars(
                select(Order).where(Order.source == "bot", Order.source_ref == str(bot_id)).order_by(Order.id)
            )
        )


def test_an_entry_signal_buys_a_fraction_of_the_free_quote_at_market_once(
    bot_trader, make_bot, hour_candles, decider, sim
):
    bot_id = make_bot(bot_trader, ALWAYS_LONG, params={"size": 0.1})
    candle = hour_candles[-1]
    result = run_tick(bot_id, candle, "1h", decider)
    assert result.action == "enter" and len(result.order_ids) == 1
    [order] = _orders(bot_id)
    assert (order.side, order.type, order.state, order.source) == ("buy", "market", "filled", "bot")
    spent = order.filled_quantity * order.average_price
    # 10% of 100000 USDT, less the headroom kept for a price tick after the close, never more.
    assert Decimal("9900") < spent <= Decimal("10000")
    assert len(bot_trader.at_sim(order.id)) == 1
    with new_session() as session:
        tick = session.scalar(select(BotTick).where(BotTick.bot_id == bot_id))
        assert tick.candle_time == candle and tick.order_ids == [order.id] and tick.decision["enter"] == "long"
    # The same candle again (a redelivered task): nothing more.
    again = run_tick(bot_id, candle, "1h", decider)
    assert again.action == "duplicate" and again.order_ids == ()
    assert len(_orders(bot_id)) == 1


def test_the_next_candle_sees_the_position_from_the_fills_ledger_and_holds(bot_trader, make_bot, hour_candles, decider):
    bot_id = make_bot(bot_trader, ALWAYS_LONG)
    assert run_tick(bot_id, hour_candles[-2], "1h", decider).action == "enter"
    result = run_tick(bot_id, hour_candles[-1], "1h", decider)
    assert result.action == "hold" and result.note == "holding the position"
    assert len(_orders(bot_id)) == 1
    # An older candle than the last one acted on is never traded.
    assert run_tick(bot_id, hour_candles[-3], "1h", decider).action == "duplicate"


def test_an_exit_signal_sells_the_whole_position_at_market(bot_trader, make_bot, hour_candles, decider):
    bot_id = make_bot(bot_trader, LONG_THEN_EXIT)
    run_tick(bot_id, hour_candles[-2], "1h", decider)
    result = run_tick(bot_id, hour_candles[-1], "1h", decider)
    assert result.action == "exit"
    buy, sell = _orders(bot_id)
    assert sell.side == "sell" and sell.state == "filled"
    # What was bought less the base-asset fee, rounded down to the step: the sale leaves only dust.
    assert sell.filled_quantity <= buy.filled_quantity
    assert buy.filled_quantity - sell.filled_quantity < Decimal("0.0001") + buy.filled_quantity * Decimal("0.002")


def test_stop_loss_and_take_profit_go_on_as_one_oco_once_the_entry_fills(
    bot_trader, make_bot, hour_candles, decider, sim
):
    price = sim.state.last_price("BTCUSDT")
    stop, target = round(float(price) * 0.8, 2), round(float(price) * 1.2, 2)
    bot_id = make_bot(bot_trader, stops_strategy(stop, target))
    result = run_tick(bot_id, hour_candles[-1], "1h", decider)
    assert result.action == "enter"
    entry, protection = _orders(bot_id)
    assert entry.state == "filled"
    assert (protection.type, protection.side, protection.state) == ("oco", "sell", "open")
    assert protection.price == Decimal(str(target)) and protection.stop_price == Decimal(str(stop))
    assert protection.quantity <= entry.filled_quantity
    assert _bot(bot_id).pending_protection is None


def test_a_trailing_stop_goes_on_as_the_trailing_stop_order_type_with_its_trail(
    bot_trader, make_bot, hour_candles, decider, sim
):
    bot_id = make_bot(bot_trader, trailing_strategy(2.5))
    result = run_tick(bot_id, hour_candles[-1], "1h", decider)
    assert result.action == "enter"
    entry, protection = _orders(bot_id)
    assert entry.state == "filled"
    assert (protection.type, protection.side, protection.trail_pct, protection.stop_price, protection.price) == (
        "trailing_stop",
        "sell",
        Decimal("2.5"),
        None,
        None,
    )
    assert protection.state == "open" and protection.quantity <= entry.filled_quantity  # native at the simulator
    [at_venue] = bot_trader.at_sim(protection.id)
    assert at_venue.trailing_delta == 250
    assert _bot(bot_id).pending_protection is None
    with new_session() as session:
        tick = session.scalar(select(BotTick).where(BotTick.bot_id == bot_id))
        assert tick.decision["trailing_stop"] == 2.5 and tick.decision["stop_loss"] is None


def test_a_trailing_stop_beside_a_stop_loss_stops_the_bot_and_orders_nothing(
    bot_trader, make_bot, hour_candles, decider
):
    bot_id = make_bot(bot_trader, trailing_strategy(2.5, stop_price=1000.0))
    result = run_tick(bot_id, hour_candles[-1], "1h", decider)
    assert result.action == "error" and _orders(bot_id) == []
    bot = _bot(bot_id)
    assert bot.state == "error" and bot.last_error["message"].startswith("trailing_stop() at candle")
    assert "stop_loss() must return None when trailing_stop() returns a trail" in bot.last_error["message"]


def test_a_strategy_that_raises_stops_the_bot_with_type_message_and_line(bot_trader, make_bot, hour_candles, decider):
    bot_id = make_bot(bot_trader, RAISES)
    result = run_tick(bot_id, hour_candles[-1], "1h", decider)
    assert result.action == "error" and result.order_ids == ()
    bot = _bot(bot_id)
    assert bot.state == "error"
    assert bot.last_error["type"] == "ValueError"
    assert "cannot decide at this price" in bot.last_error["message"]
    assert bot.last_error["line"] == RAISES_LINE
    assert _orders(bot_id) == []
    # A stopped bot ignores further candles.
    assert run_tick(bot_id, hour_candles[-1] + 3_600_000, "1h", decider).action == "skip"


def test_a_strategy_that_never_returns_times_out_and_stops_the_bot(bot_trader, make_bot, hour_candles, decider):
    bot_id = make_bot(bot_trader, FOREVER, timeout_seconds=2)
    result = run_tick(bot_id, hour_candles[-1], "1h", decider)
    assert result.action == "error"
    bot = _bot(bot_id)
    assert bot.state == "error" and bot.last_error["type"] in ("Timeout", "CpuTimeLimit")
    assert "2 s" in bot.last_error["message"]


def test_a_tick_that_waited_too_long_in_the_queue_does_not_trade(bot_trader, make_bot, hour_candles, decider):
    bot_id = make_bot(bot_trader, ALWAYS_LONG)
    now = 1_900_000_000_000
    result = run_tick(bot_id, hour_candles[-1], "1h", decider, issued_ms=now - 31 * 60_000, now_ms=now)
    assert result.action == "skip" and "too late" in result.note
    assert _orders(bot_id) == []
    assert _bot(bot_id).state == "running"


def test_a_candle_not_in_the_table_is_skipped(bot_trader, make_bot, hour_candles, decider):
    bot_id = make_bot(bot_trader, ALWAYS_LONG)
    result = run_tick(bot_id, hour_candles[-1] + 30 * 3_600_000, "1h", decider)
    assert result.action == "skip" and "not stored" in result.note


def test_an_exchange_error_is_recorded_and_the_bot_keeps_running(bot_trader, make_bot, hour_candles, decider):
    bot_id = make_bot(bot_trader, ALWAYS_LONG)
    bot_trader.point_at("http://127.0.0.1:9")  # nothing listens there
    result = run_tick(bot_id, hour_candles[-1], "1h", decider)
    assert result.action == "error"
    bot = _bot(bot_id)
    assert bot.state == "running" and bot.last_error["kind"] == "exchange"
    assert _orders(bot_id) == []


def test_an_auth_error_pauses_the_bot(bot_trader, make_bot, hour_candles, decider):
    from core import brokers
    from core.models import BrokerConnection

    bot_id = make_bot(bot_trader, ALWAYS_LONG)
    with session_scope() as session:
        session.get(BrokerConnection, bot_trader.broker_id).set_credentials("unknown-key-1234", "unknown-secret-1234")
    brokers.forget_exchange(bot_trader.broker_id)
    result = run_tick(bot_id, hour_candles[-1], "1h", decider)
    assert result.action == "error"
    bot = _bot(bot_id)
    assert bot.state == "paused" and bot.last_error["type"] == "AuthError"


def test_a_symbol_the_broker_stopped_listing_pauses_the_bot_and_notifies(bot_trader, make_bot, hour_candles, decider):
    bot_id = make_bot(bot_trader, ALWAYS_LONG)
    with session_scope() as session:
        session.get(Bot, bot_id).symbol = "GONEUSDT"  # delisted while running; the source (sim BTCUSDT) still closes
    result = run_tick(bot_id, hour_candles[-1], "1h", decider)
    assert result.action == "error" and _orders(bot_id) == []
    bot = _bot(bot_id)
    assert bot.state == "paused" and bot.last_error["type"] == "UnknownSymbol"
    assert "unknown symbol 'GONEUSDT' on sim" in bot.last_error["message"]
    [notice] = [n for n in notifications_of(bot_trader.user_id, "bot") if f"#{bot_id}" in n.title]
    assert notice.title == f"Bot #{bot_id} paused" and "UnknownSymbol" in notice.body


def test_a_paused_bot_does_not_tick(bot_trader, make_bot, hour_candles, decider):
    bot_id = make_bot(bot_trader, ALWAYS_LONG, start=False)
    assert run_tick(bot_id, hour_candles[-1], "1h", decider).action == "skip"
    assert _orders(bot_id) == []


def test_a_bot_stopped_on_an_error_tells_its_trader(bot_trader, make_bot, hour_candles, decider):
    bot_id = make_bot(bot_trader, RAISES)
    run_tick(bot_id, hour_candles[-1], "1h", decider)
    told = [n for n in notifications_of(bot_trader.user_id, "bot") if n.link == f"/bots/{bot_id}"]
    assert [(n.severity, n.title) for n in told] == [("error", f"Bot #{bot_id} stopped on an error")]
    assert told[0].body.startswith(f"ValueError at line {RAISES_LINE}: ")
    assert "cannot decide at this price" in told[0].body
