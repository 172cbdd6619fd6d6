"""The bot page's "Backtest this bot over its live period", over HTTP with a real Celery worker: a bot with no
candles gets a clear message; a bot whose live trades are in the ledger gets the backtest of its period beside
them, trade by trade, the mismatches highlighted with the METRICS.md rule they break."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.infra.db import session_scope
from core.models import Bot, BotTick, BrokerConnection, Fill, Order
from tests.backtest_support import insert_candles, read_rows
from tests.core.bots.fixtures import LONG_THEN_EXIT
from tests.stop_support import wait_for
from tests.support import csrf_token_from, remember_secret

HOUR = 3_600_000
ROWS = read_rows("BTCUSDT-1h.csv", limit=15, skip=40_000)  # t0 .. t14
T = [int(r[0]) for r in ROWS]
OPEN = [Decimal(r[1]) for r in ROWS]
QTY = Decimal("0.05")


def _bot(user_id: int, venue: str) -> int:
    """A paused bot on `venue`'s BTCUSDT 1h (LONG_THEN_EXIT, 5 candles per decision)."""
    from core.strategies import store as strategy_store

    with session_scope() as session:
        broker = BrokerConnection(user_id=user_id, venue="sim", label="Sim", base_url="http://127.0.0.1:9")
        broker.set_credentials(
            remember_secret("k-" + secrets.token_hex(6)), remember_secret("s-" + secrets.token_hex(9))
        )
        session.add(broker)
        version = strategy_store.create_strategy(session, user_id, f"alt-{venue}", code=LONG_THEN_EXIT).latest
        session.flush()
        bot = Bot(
            user_id=user_id,
            name=f"alt-{venue}",
            strategy_version_id=version.id,
            broker_id=broker.id,
            venue="sim",
            symbol="BTCUSDT",
            source_venue=venue,
            source_symbol="BTCUSDT",
            timeframe="1h",
            candles_needed=5,
        )
        session.add(bot)
        session.flush()
        return bot.id


def _live(bot_id: int, user_id: int, broker_id: int, side: str, candle: int, price: Decimal, tick: int) -> None:
    """One filled market order of the bot, 2 s into candle `candle`, and the tick (at candle `tick`) that decided it."""
    with session_scope() as session:
        order = Order(
            user_id=user_id, broker_id=broker_id, symbol="BTCUSDT", side=side, type="market", quantity=QTY,
            state="filled", filled_quantity=QTY, average_price=price, source="bot", source_ref=str(bot_id),
        )  # fmt: skip
        session.add(order)
        session.flush()
        traded = datetime.fromtimestamp((T[candle] + 2000) / 1000, UTC)
        session.add(
            Fill(
                order_id=order.id,
                user_id=user_id,
                broker_id=broker_id,
                symbol="BTCUSDT",
                side=side,
                venue_trade_id=f"t{order.id}",
                price=price,
                quantity=QTY,
                fee=QTY * Decimal("0.001"),
                fee_asset="BTC" if side == "buy" else "USDT",
                traded_at=traded,
            )  # fmt: skip
        )
        row = session.scalar(select(BotTick).where(BotTick.bot_id == bot_id, BotTick.candle_time == T[tick]))
        if row is None:
            row = BotTick(bot_id=bot_id, candle_time=T[tick])
            session.add(row)
        row.action, row.order_ids = ("enter" if side == "buy" else "exit"), [order.id]
        row.decision = {"enter": "long", "exit": False, "size_fraction": 0.1} if side == "buy" else None


def _press(client, bot_id: int):
    token = csrf_token_from(client.get(f"/bots/{bot_id}").get_data(as_text=True))
    return client.post(f"/bots/{bot_id}/backtest", data={"csrf_token": token})


@pytest.mark.slow
def test_backtest_a_bot_over_its_live_period_beside_its_live_trades(
    client, logged_in, db_session, celery_worker_process
):
    venue = f"lb{secrets.token_hex(3)}"
    bot_id = _bot(logged_in.id, venue)
    page = client.get(f"/bots/{bot_id}").get_data(as_text=True)
    assert "Backtest this bot over its live period" in page

    # No decision, then no candle yet: a clear message on the bot page, nothing queued.
    response = _press(client, bot_id)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/bots/{bot_id}")
    assert "has not decided on any candle yet" in client.get(f"/bots/{bot_id}").get_data(as_text=True)
    with session_scope() as session:
        broker_id = session.get_one(Bot, bot_id).broker_id
        session.add(BotTick(bot_id=bot_id, candle_time=T[10], action="hold", order_ids=[]))
    _press(client, bot_id)
    assert f"no BTCUSDT 1h candles from {venue} since the bot" in client.get(f"/bots/{bot_id}").get_data(as_text=True)

    # The heartbeat's candles, and the bot's live trades. The backtest of LONG_THEN_EXIT exits and enters again
    # at each open (t11 -> t12 -> t13 -> t14, then end_of_data); the live trades: the first as the backtest,
    # the second sold 1 % off the open, the third still held.
    insert_candles(db_session, ROWS, venue=venue, symbol="BTCUSDT", timeframe="1h")
    _live(bot_id, logged_in.id, broker_id, "buy", 11, OPEN[11], tick=10)
    _live(bot_id, logged_in.id, broker_id, "sell", 12, OPEN[12], tick=11)
    _live(bot_id, logged_in.id, broker_id, "buy", 12, OPEN[12], tick=11)
    _live(bot_id, logged_in.id, broker_id, "sell", 13, OPEN[13] * Decimal("1.01"), tick=12)
    _live(bot_id, logged_in.id, broker_id, "buy", 13, OPEN[13], tick=12)

    response = _press(client, bot_id)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert re.search(rf"/bots/{bot_id}/backtest/\d+$", location)

    def finished() -> str | None:
        text = client.get(location, headers={"HX-Request": "true"}).get_data(as_text=True)
        return text if "hx-trigger" not in text else None  # the fragment stops polling once the run is over

    fragment = wait_for(finished, timeout=120)
    assert "The backtest failed" not in fragment
    rows = re.findall(r'<tr class="(parity-\w+)">(.*?)</tr>', fragment, re.S)
    assert [kind for kind, _ in rows] == ["parity-match"] + ["parity-mismatch"] * 3
    assert "exit price" in rows[1][1] and "(Slippage)" in rows[1][1]
    assert f"still open live, closed by signal at {T[14]}" in rows[2][1] and "(The end of the file)" in rows[2][1]
    assert "in the backtest only" in rows[3][1] and "(A match (trades pair by entry candle))" in rows[3][1]
    assert 'id="parity-mismatched">3<' in fragment and "<strong>3</strong> live trade(s)" in fragment
    full = client.get(location).get_data(as_text=True)
    assert "live vs backtest of its live period" in full and 'id="parity-trades"' in full


def test_another_users_bot_or_a_foreign_run_is_not_found(client, logged_in, make_user):
    other, _ = make_user()
    foreign = _bot(other.id, f"lb{secrets.token_hex(3)}")
    assert client.get(f"/bots/{foreign}/backtest/1").status_code == 404
    token = csrf_token_from(client.get("/bots/").get_data(as_text=True))
    assert client.post(f"/bots/{foreign}/backtest", data={"csrf_token": token}).status_code == 404
