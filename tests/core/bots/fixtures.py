"""Bot fixtures (imported by every bot test module): a simulator, a funded trader, real BTCUSDT 1h candles
in the candles table, strategies saved through the store, and bots created through the domain API."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import update

from tests.backtest_support import insert_candles, read_rows

CANDLE_ROWS = 300
SKIP_ROWS = 40_000  # a 2022 stretch of the real 1h file

ALWAYS_LONG = """from core.strategies import Strategy


class AlwaysLong(Strategy):
    params = {"size": 0.1}

    def should_long(self):
        return True

    def position_size(self):
        return self.params["size"]
"""

LONG_THEN_EXIT = """from core.strategies import Strategy


class LongThenExit(Strategy):
    params = {"size": 0.1}

    def should_long(self):
        return True

    def should_exit(self):
        return True

    def position_size(self):
        return self.params["size"]
"""

RAISES = """from core.strategies import Strategy


class Broken(Strategy):
    def should_long(self):
        price = self.data.close[-1]
        raise ValueError("cannot decide at this price")
"""
RAISES_LINE = 7

FOREVER = """from core.strategies import Strategy


class Forever(Strategy):
    def should_long(self):
        n = 0
        while True:
            n += 1
        return False
"""


def stops_strategy(stop_price: float, target_price: float) -> str:
    """Always long, with a fixed stop-loss and take-profit around the simulator's current price."""
    return f"""from core.strategies import Strategy


class FixedStops(Strategy):
    params = {{"size": 0.05}}

    def should_long(self):
        return True

    def position_size(self):
        return self.params["size"]

    def stop_loss(self):
        return {stop_price}

    def take_profit(self):
        return {target_price}
"""


def trailing_strategy(trail: float, stop_price: float | None = None) -> str:
    """Always long, protected by a trailing stop of `trail` % (and a stop-loss too when `stop_price` is given)."""
    stop = f"\n    def stop_loss(self):\n        return {stop_price}\n" if stop_price is not None else ""
    return f"""from core.strategies import Strategy


class Trailing(Strategy):
    params = {{"size": 0.05}}

    def should_long(self):
        return True

    def position_size(self):
        return self.params["size"]

    def trailing_stop(self):
        return {trail}
{stop}"""


@pytest.fixture(scope="session")
def hour_candles(infra) -> list[int]:
    """Real BTCUSDT 1h candles stored for venue `sim`; returns their open times, oldest first."""
    from core.infra.db import new_session

    rows = read_rows("BTCUSDT-1h.csv", limit=CANDLE_ROWS, skip=SKIP_ROWS)
    with new_session() as session:
        insert_candles(session, rows, venue="sim", symbol="BTCUSDT", timeframe="1h")
    return [int(row[0]) for row in rows]


@pytest.fixture()
def bot_trader(make_user, sim, redis_client):
    from core import brokers
    from tests.trading_support import make_trader

    trader = make_trader(make_user, sim)
    yield trader
    brokers.forget_exchange(trader.broker_id)


@pytest.fixture()
def make_bot(infra):
    """Save `code` as a strategy of the trader and create a bot on it (started unless told otherwise)."""
    from core.bots import manage
    from core.infra.db import session_scope
    from core.models import Bot
    from core.strategies import store as strategy_store

    created: list[int] = []

    def factory(
        trader,
        code: str = ALWAYS_LONG,
        *,
        start: bool = True,
        timeframe: str = "1h",
        params: dict | None = None,
        timeout_seconds: int = 10,
        symbol: str = "BTCUSDT",
    ) -> int:
        with session_scope() as session:
            strategy = strategy_store.create_strategy(session, trader.user_id, f"s-{secrets.token_hex(3)}", code=code)
            version = strategy.latest
            assert version.valid, version.errors
            bot = manage.create_bot(
                session,
                trader.user_id,
                manage.BotSettings(
                    name=f"bot-{secrets.token_hex(3)}",
                    strategy_version_id=version.id,
                    broker_id=trader.broker_id,
                    symbol=symbol,
                    timeframe=timeframe,
                    params=params or {},
                    candles_needed=200,
                    timeout_seconds=timeout_seconds,
                ),
            )
            if start:
                manage.start_bot(session, bot)
            created.append(bot.id)
            return bot.id

    yield factory
    # Stop them: a feed running elsewhere in the suite must not tick leftover bots.
    with session_scope() as session:
        session.execute(update(Bot).where(Bot.id.in_(created)).values(state="paused"))
