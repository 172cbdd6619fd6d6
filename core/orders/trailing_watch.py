"""Emulated trailing stops, for a venue or a symbol without a native one (Bitget spot; Kraken with an
activation price; a Binance symbol without `allowTrailingStop`).

The order is recorded as any other and stays `new`: nothing rests at the venue. Its `TrailingWatch` row
keeps the best price since it activated (the activation price reached, or at once without one). The watcher
(`watch_pass`, every WATCH_EVERY_S on the `orders` queue) reads the heartbeat's stored prices (the feeds' top
of book, else the last 1m close: core/candles/marks.py), moves the extreme, and once the price falls (rises,
for a buy) `trail_pct` % from it, claims the watch (`triggered_at`, set once under the row's lock) and hands
the order to placement, which sends it as a market order under the order's own client order id. So the
market order is recorded before it is sent, sent once whatever is retried, and a restarted worker finds the
watch where the last one left it (the state is in Postgres; a claimed order still `new` is re-enqueued by
reconciliation like any order stuck `new`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Exists, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.candles.marks import StoredPrices
from core.exchanges.models import OrderRequest
from core.infra.db import session_scope, utcnow
from core.models import BrokerConnection, Order, TrailingWatch
from core.orders.states import OrderState

log = logging.getLogger(__name__)

WATCH_EVERY_S = 2.0
HUNDRED = Decimal(100)
WATCHING = "watching: an emulated trailing stop, sent as a market order once the price crosses its trail"


def arm(session: Session, order: Order) -> TrailingWatch:
    """The order's watch, created on the first placement attempt (once, whatever is retried)."""
    session.execute(insert(TrailingWatch).values(order_id=order.id, updated_at=utcnow()).on_conflict_do_nothing())
    return session.get_one(TrailingWatch, order.id)


def market_request(order: Order) -> OrderRequest:
    """What a triggered emulated trailing stop sends: a market order for its quantity, under its client id."""
    return OrderRequest(
        client_order_id=order.client_order_id or "",
        symbol=order.symbol,
        side="buy" if order.side == "buy" else "sell",
        type="market",
        quantity=order.quantity,
    )


@dataclass(frozen=True)
class Step:
    extreme: Decimal | None
    crossed: bool


def step(side: str, trail_pct: Decimal, activation: Decimal | None, extreme: Decimal | None, price: Decimal) -> Step:
    """One price seen by a watch. Not active yet: it activates when the price reaches the activation price
    (above it for a sell, below for a buy: the profitable side), or at once without one. Active: a sell
    follows the highest price and is crossed once the price is `trail_pct` % below it; a buy mirrors it."""
    sell = side == "sell"
    if extreme is None:
        if activation is not None and (price < activation if sell else price > activation):
            return Step(None, False)
        return Step(price, False)
    extreme = max(extreme, price) if sell else min(extreme, price)
    level = extreme * (1 - trail_pct / HUNDRED) if sell else extreme * (1 + trail_pct / HUNDRED)
    return Step(extreme, price <= level if sell else price >= level)


def trigger_level(order: Order, watch: TrailingWatch | None) -> Decimal | None:
    """Where the stop is now (for the pages); None while it waits for its activation price."""
    if watch is None or watch.extreme is None or order.trail_pct is None:
        return None
    offset = watch.extreme * order.trail_pct / HUNDRED
    return watch.extreme - offset if order.side == "sell" else watch.extreme + offset


def _heartbeat_prices(session: Session) -> Callable[[str, str], Decimal | None]:
    """A broker market's price as the heartbeat stored it (None: not on the heartbeat; the watch waits)."""
    stored = StoredPrices(session.connection())

    def price_of(venue: str, symbol: str) -> Decimal | None:
        listing = stored.symbol_for(venue, symbol)
        return stored.latest(listing) if listing else None

    return price_of


def watch_pass(enqueue: Callable[[int], bool]) -> list[int]:
    """Move every untriggered watch with its market's heartbeat price; claim and enqueue the crossed ones."""
    claimed: list[int] = []
    with session_scope() as session:
        price_of = _heartbeat_prices(session)
        rows = session.execute(
            select(TrailingWatch, Order, BrokerConnection.venue)
            .join(Order, Order.id == TrailingWatch.order_id)
            .join(BrokerConnection, BrokerConnection.id == Order.broker_id)
            .where(TrailingWatch.triggered_at.is_(None), Order.state == OrderState.NEW.value)
            .order_by(TrailingWatch.order_id)
            .with_for_update(of=TrailingWatch, skip_locked=True)
        ).all()
        prices: dict[tuple[str, str], Decimal | None] = {}
        for watch, order, venue in rows:
            key = (venue, order.symbol)
            if key not in prices:
                prices[key] = price_of(venue, order.symbol)
            price = prices[key]
            if price is None or order.trail_pct is None:
                continue
            moved = step(order.side, order.trail_pct, order.stop_price, watch.extreme, price)
            if moved.extreme != watch.extreme:
                watch.extreme = moved.extreme
            if moved.crossed:
                watch.trigger_price, watch.triggered_at = price, utcnow()
                claimed.append(order.id)
                log.info(
                    "trailing_stop_triggered",
                    extra={"order_id": order.id, "price": str(price), "extreme": str(watch.extreme)},
                )
    for order_id in claimed:  # after the commit: the claim is durable before anything is queued
        enqueue(order_id)  # False (Redis down): reconciliation re-enqueues a claimed order still `new`
    return claimed


def watched_levels(session: Session, orders: list[Order]) -> dict[int, Decimal | None]:
    """For the pages: the emulated trailing stops among `orders` still watched, each with where it stands now
    (None: waiting for its activation price)."""
    waiting = {o.id: o for o in orders if o.type == "trailing_stop" and o.state == OrderState.NEW.value}
    if not waiting:
        return {}
    watches = session.scalars(
        select(TrailingWatch).where(TrailingWatch.order_id.in_(waiting), TrailingWatch.triggered_at.is_(None))
    )
    return {w.order_id: trigger_level(waiting[w.order_id], w) for w in watches}


def waiting_watch() -> Exists:
    """A condition on Order: an emulated trailing stop still watched (not to be re-enqueued meanwhile)."""
    return exists().where(TrailingWatch.order_id == Order.id, TrailingWatch.triggered_at.is_(None))


def triggered(session: Session, order_id: int) -> bool:
    return session.scalar(select(TrailingWatch.triggered_at).where(TrailingWatch.order_id == order_id)) is not None
