"""The statistics bench's trader: `bench-statistics`, with 5 simulator connections, 20 bots and N fills
over 2 years, written with COPY (seconds, not minutes) on the first run and reused by every later run
with the same N. Between runs the user is inactive, so its connections cost no reconciliation sweeps.

The fills: each bot trades one symbol on one connection, a random walk of prices; it enters (one or
two buys), then sells what it ordered, each order filled in one or two fills; one connection in five
charges its buy fees in the base asset (so its sells take the fee dust). A tenth of the orders are
manual trades on the same symbols.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from core import accounts, brokers
from core.infra.db import get_engine
from core.infra.security import register_secret
from core.models import Bot, BrokerConnection, Fill, Order, User

USERNAME = "bench-statistics"
SPAN = timedelta(days=730)
SYMBOLS = {"BTCUSDT": 60000.0, "ETHUSDT": 3000.0, "SOLUSDT": 150.0, "BNBUSDT": 600.0}
MANUAL_SHARE = 0.1
ORDER_COLUMNS = (
    "id",
    "user_id",
    "broker_id",
    "symbol",
    "side",
    "type",
    "quantity",
    "time_in_force",
    "state",
    "filled_quantity",
    "source",
    "source_ref",
    "created_at",
    "updated_at",
)
FILL_COLUMNS = (
    "order_id",
    "user_id",
    "broker_id",
    "symbol",
    "side",
    "venue_trade_id",
    "price",
    "quantity",
    "fee",
    "fee_asset",
    "traded_at",
)


@dataclass(frozen=True)
class Seeded:
    user_id: int
    broker_ids: list[int]
    fills: int
    first: datetime
    last: datetime
    inserted: bool  # written by this run (False: reused)


def prepare(session: Session, fills: int, connections: int, bots: int, sim_url: str) -> Seeded:
    """The bench trader with exactly `fills` fills (reused when it has them), active for the run."""
    user = accounts.find_user(session, USERNAME)
    if user is None:
        password = accounts.generate_password()
        register_secret(password)
        user = accounts.create_user(session, USERNAME, password, within_limits=False)
    user.is_active = True
    broker_ids = _connections(session, user.id, connections, sim_url)
    bot_refs = _bots(session, user.id, broker_ids, bots)
    have = session.scalar(select(func.count()).select_from(Fill).where(Fill.user_id == user.id))
    inserted = have != fills
    if inserted:
        session.execute(delete(Fill).where(Fill.user_id == user.id))
        session.execute(delete(Order).where(Order.user_id == user.id))
        _copy(session, user.id, broker_ids, bot_refs, fills)
    first, last = session.execute(
        select(func.min(Fill.traded_at), func.max(Fill.traded_at)).where(Fill.user_id == user.id)
    ).one()
    return Seeded(user.id, broker_ids, fills, first, last, inserted)


def one_more_fill(session: Session, seeded: Seeded) -> int:
    """A fill arriving after the history (a manual buy without its order): its id, for remove_fill."""
    fill = Fill(
        user_id=seeded.user_id,
        broker_id=seeded.broker_ids[0],
        symbol="BTCUSDT",
        side="buy",
        venue_trade_id=f"extra-{random.randbytes(6).hex()}",
        price=Decimal("60000"),
        quantity=Decimal("0.001"),
        fee=Decimal("0.06"),
        fee_asset="USDT",
        traded_at=seeded.last + timedelta(minutes=1),
    )
    session.add(fill)
    session.flush()
    return fill.id


def remove_fill(session: Session, fill_id: int) -> None:
    """The bench's extra fill gone again: the next run finds the seeded history as it was."""
    session.execute(delete(Fill).where(Fill.id == fill_id))


def vacuum() -> None:
    """What autovacuum does some time after a bulk insert, at once: statistics, and the visibility map
    that lets the ledger's watermark count the fills from the index alone."""
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE fills, orders"))


def deactivate(session: Session, user_id: int) -> None:
    session.execute(update(User).where(User.id == user_id).values(is_active=False))


def _connections(session: Session, user_id: int, count: int, sim_url: str) -> list[int]:
    ids = []
    for number in range(1, count + 1):
        label = f"Desk {number}"
        broker_id = session.scalar(
            select(BrokerConnection.id).where(BrokerConnection.user_id == user_id, BrokerConnection.label == label)
        )
        if broker_id is None:
            api_key, api_secret = f"bench{random.randbytes(6).hex()}", random.randbytes(18).hex()
            register_secret(api_secret)
            broker_id = brokers.create_connection(
                session,
                user_id,
                brokers.ConnectionInput(
                    venue="sim", label=label, api_key=api_key, api_secret=api_secret, base_url=sim_url
                ),
            ).id
        ids.append(broker_id)
    return ids


def _bots(session: Session, user_id: int, broker_ids: list[int], count: int) -> list[tuple[str, int, str]]:
    """(source_ref, broker_id, symbol) of each bot, created on first use."""
    symbols = list(SYMBOLS)
    refs = []
    for number in range(count):
        name = f"bench-bot-{number + 1:02d}"
        bot = session.scalar(select(Bot).where(Bot.user_id == user_id, Bot.name == name))
        if bot is None:
            bot = Bot(
                user_id=user_id,
                name=name,
                broker_id=broker_ids[number % len(broker_ids)],
                venue="sim",
                symbol=symbols[number % len(symbols)],
                timeframe="1h",
            )
            session.add(bot)
            session.flush()
        refs.append((bot.source_ref, bot.broker_id, bot.symbol))
    return refs


def _copy(session: Session, user_id: int, broker_ids: list[int], bot_refs: list, fills: int) -> None:
    orders, rows = _generate(user_id, broker_ids, bot_refs, fills)
    ids = list(session.scalars(text("select nextval('orders_id_seq') from generate_series(1, :n)"), {"n": len(orders)}))
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY orders ({', '.join(ORDER_COLUMNS)}) FROM STDIN") as copy:
            for order_id, order in zip(ids, orders, strict=True):
                copy.write_row((order_id, *order))
        with cursor.copy(f"COPY fills ({', '.join(FILL_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((ids[row[0]], *row[1:]))


def _generate(user_id: int, broker_ids: list[int], bot_refs: list, fills: int) -> tuple[list[tuple], list[tuple]]:
    """Orders (without their ids) and fills (with the index of their order), in time order per trader."""
    rng = random.Random(30)
    start = datetime.now(UTC).replace(microsecond=0) - SPAN - timedelta(days=2)
    step = SPAN / fills
    prices = dict(SYMBOLS)
    base_fee_brokers = set(broker_ids[4::5])
    traders = [("bot", ref, broker_id, symbol) for ref, broker_id, symbol in bot_refs]
    traders += [("manual", None, broker_ids[n % len(broker_ids)], s) for n, s in enumerate(SYMBOLS)]
    held = {id(t): Decimal(0) for t in traders}  # what each trader ordered and still holds
    orders: list[tuple] = []
    rows: list[tuple] = []
    moment = start
    while len(rows) < fills:
        trader = rng.choice(traders) if rng.random() < MANUAL_SHARE else rng.choice(traders[: len(bot_refs)])
        source, ref, broker_id, symbol = trader
        prices[symbol] *= 1 + rng.gauss(0, 0.004)
        price = Decimal(f"{prices[symbol]:.2f}")
        if held[id(trader)] > 0 and rng.random() < 0.6:
            side, quantity = "sell", held[id(trader)]
        else:
            side, quantity = "buy", Decimal(f"{rng.uniform(100, 2000) / prices[symbol]:.5f}")
        held[id(trader)] += quantity if side == "buy" else -quantity
        base, quote = symbol[:-4], symbol[-4:]
        fee_asset = base if side == "buy" and broker_id in base_fee_brokers else quote
        parts = [quantity] if rng.random() < 0.6 or quantity < Decimal("0.0001") else _halves(quantity)
        order_index = len(orders)
        order = (user_id, broker_id, symbol, side, "market", quantity, "GTC", "filled", quantity, source, ref)
        orders.append((*order, moment, moment))
        for part in parts:
            fee = (part * Decimal("0.001")).quantize(Decimal("1e-8")) if fee_asset == base else part * price / 1000
            trade_id = f"b{len(rows)}"
            rows.append((order_index, user_id, broker_id, symbol, side, trade_id, price, part, fee, fee_asset, moment))
            moment += step
    return orders, rows[:fills]


def _halves(quantity: Decimal) -> list[Decimal]:
    first = (quantity / 2).quantize(Decimal("1e-5"))
    return [first, quantity - first]
