"""The fills ledger: each venue trade stored once, the trades query that fills a gap (per order or in
one batch per broker symbol), and the after-fill callbacks run once an order's fills are all recorded.

Placement (core.orders.placement) records the fills a venue sends with its answer and hands the rest
here; a worker may batch them (record_fills_later)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.brokers import exchange_for
from core.exchanges.errors import ExchangeError
from core.exchanges.models import OcoResult, VenueOrder, VenueTrade
from core.exchanges.ratelimit import background
from core.infra.db import session_scope, utcnow
from core.models import BrokerConnection, Fill, Order
from core.orders.events import event_payload, publish

log = logging.getLogger(__name__)

AfterFill = Callable[[int], object]
# Callbacks by `Order.source`, run after an order of that source ended with a fill (see on_final_fill).
_AFTER_FILL: dict[str, list[AfterFill]] = {}
# Set by worker processes (see record_fills_later): how to have a placement's fills recorded in a batch.
_FILLS_LATER: list[Callable[[int, str], bool]] = []
# How far back record_symbol_fills looks for orders whose fills the ledger misses.
FILLS_WINDOW = timedelta(hours=6)


def on_final_fill(source: str, callback: AfterFill) -> None:
    """Call `callback(order_id)` when an order of `source` reaches a final state with a fill.

    It runs after the state and the fills are committed, in the process that saw the fill, and may run
    more than once for the same order (a redelivered task, a sync racing a placement): it must be
    idempotent. A process that dies before running it relies on its owner's own recovery sweep.
    """
    callbacks = _AFTER_FILL.setdefault(source, [])
    if callback not in callbacks:
        callbacks.append(callback)


def after_final_fill(order_id: int, source: str) -> None:
    for callback in _AFTER_FILL.get(source, ()):
        try:
            callback(order_id)
        except Exception as exc:  # noqa: BLE001 - a follow-up must never undo or hide the recorded fill
            log.warning(
                "after_fill_failed",
                extra={"order_id": order_id, "source": source, "error": f"{type(exc).__name__}: {str(exc)[:200]}"},
            )


def record_fills_later(schedule: Callable[[int, str], bool]) -> None:
    """Let placements hand their fills to `schedule(broker_id, symbol)` (True: a batch will record them
    and run the after-fill callbacks) instead of querying the venue's trades once per order.

    A trades query weighs 20 on Binance against 1 for the order itself: one per filled order spends
    the IP's 6000/minute budget at under 5 orders/s and then every order waits for the limiter."""
    _FILLS_LATER[:] = [schedule]


def fills_scheduled(broker_id: int, symbol: str) -> bool:
    return bool(_FILLS_LATER) and _FILLS_LATER[0](broker_id, symbol)


def _leg_ids(order: Order) -> tuple[str, ...]:
    for event in reversed(order.events):
        legs = (event.detail or {}).get("legs")
        if legs:
            return tuple(legs)
    return ()


_INSERT_FILLS_ONCE = (
    insert(cast(Table, Fill.__table__))
    .on_conflict_do_nothing(index_elements=["broker_id", "symbol", "venue_trade_id"])
    .returning(Fill.__table__.c.order_id)
)  # built once; all of a call's fills in one statement (insertmanyvalues), the new ones returned


def _fill_row(user_id: int, broker_id: int, trade: VenueTrade, order: Order | None) -> dict[str, Any]:
    return {
        "order_id": order.id if order else None,
        "user_id": user_id,
        "broker_id": broker_id,
        "symbol": trade.symbol or (order.symbol if order else ""),
        "side": trade.side or (order.side if order else "buy"),
        "venue_trade_id": trade.trade_id,
        "price": trade.price,
        "quantity": trade.qty,
        "fee": trade.fee,
        "fee_asset": trade.fee_asset or None,
        "traded_at": datetime.fromtimestamp(trade.time_ms / 1000, UTC),
    }


def _insert_fills(session: Session, rows: list[dict[str, Any]]) -> Counter[int | None]:
    """Store the rows not stored already (unique broker, symbol, trade id): how many were new, by order id."""
    if not rows:
        return Counter()
    return Counter(session.execute(_INSERT_FILLS_ONCE, rows).scalars())


def record_fills(
    session: Session,
    user_id: int,
    broker_id: int,
    trades: Iterable[VenueTrade],
    orders_by_venue_id: dict[str, Order] | None = None,
) -> int:
    """Store each venue trade once (unique broker, symbol, trade id); returns how many were new."""
    orders_by_venue_id = orders_by_venue_id or {}
    rows = [_fill_row(user_id, broker_id, trade, orders_by_venue_id.get(trade.order_id)) for trade in trades]
    return sum(_insert_fills(session, rows).values())


def recorded_quantity(session: Session, order_id: int) -> Decimal:
    return session.scalar(
        select(func.coalesce(func.sum(Fill.quantity), 0)).where(Fill.order_id == order_id)
    ) or Decimal(0)


class AnswerFills(NamedTuple):
    """What an order's answer brought to the ledger."""

    complete: bool  # the ledger holds all of the order's fills
    added: int
    events: list[dict[str, Any]]  # to publish


def record_answer_fills(
    session: Session, answered: list[tuple[Order, VenueOrder | OcoResult | None]]
) -> list[AnswerFills]:
    """Record the fills the venues sent with their answers, for several orders in one statement (the
    caller logs how many were added, with the answer)."""
    complete: list[bool] = []
    rows: list[dict[str, Any]] = []
    for order, answer in answered:
        full = (
            isinstance(answer, VenueOrder)
            and bool(answer.trades)
            and sum((trade.qty for trade in answer.trades), Decimal(0)) >= order.filled_quantity
        )  # else nothing, or a partial list: the trades query fills the gap
        complete.append(full)
        if full and isinstance(answer, VenueOrder):
            rows += [
                _fill_row(order.user_id, order.broker_id, replace(t, symbol=t.symbol or order.symbol), order)
                for t in answer.trades
            ]
    added = _insert_fills(session, rows)
    return [
        AnswerFills(
            full,
            added[order.id],
            [event_payload(order, order.state, "fills_recorded") | {"type": "fill"}] if added[order.id] else [],
        )
        for (order, _), full in zip(answered, complete, strict=True)
    ]


@background()  # trade history: yields the venue's budget to orders
def record_order_fills(order_id: int) -> int:
    """Fetch this order's trades when our ledger holds less than the venue reports filled."""
    with session_scope() as session:
        order = session.get(Order, order_id)
        if order is None or recorded_quantity(session, order_id) >= order.filled_quantity:
            return 0
        broker = session.get_one(BrokerConnection, order.broker_id)
        venue_ids = set(_leg_ids(order)) | ({order.venue_order_id} if order.venue_order_id else set())
        start_ms = int(order.created_at.timestamp() * 1000) - 60_000
        try:
            trades = exchange_for(broker).trades(order.symbol, start_ms=start_ms)
        except ExchangeError as err:
            log.warning("fills_fetch_failed", extra={"order_id": order_id, "error": str(err)})
            return 0
        mine = [t for t in trades if t.order_id in venue_ids]
        added = record_fills(
            session,
            broker.user_id,
            broker.id,
            [replace(t, symbol=t.symbol or order.symbol) for t in mine],
            {vid: order for vid in venue_ids},
        )
        user_id = order.user_id
        payload = event_payload(order, order.state, "fills_recorded")
    if added:
        log.info("fills_recorded", extra={"order_id": order_id, "added": added})
        publish(user_id, [payload | {"type": "fill"}])
    return added


@background()
def record_symbol_fills(broker_id: int, symbol: str) -> list[int]:
    """One trades query for every recent order of a broker's symbol whose fills the ledger misses;
    the after-fill callbacks run for the final ones now fully recorded. Returns the completed order ids."""
    with session_scope() as session:
        broker = session.get(BrokerConnection, broker_id)
        recorded = (
            select(func.coalesce(func.sum(Fill.quantity), 0))
            .where(Fill.order_id == Order.id)
            .correlate(Order)
            .scalar_subquery()
        )
        missing = list(
            session.scalars(
                select(Order)
                .where(
                    Order.broker_id == broker_id,
                    Order.symbol == symbol,
                    Order.filled_quantity > recorded,
                    Order.updated_at >= utcnow() - FILLS_WINDOW,
                )
                .order_by(Order.id)
            )
        )
        if broker is None or not missing:
            return []
        by_venue_id = {
            venue_id: order for order in missing for venue_id in (*_leg_ids(order), order.venue_order_id) if venue_id
        }
        start_ms = int(min(order.created_at for order in missing).timestamp() * 1000) - 60_000
        trades = exchange_for(broker).trades(symbol, start_ms=start_ms)  # ExchangeError: the caller retries
        mine = [replace(t, symbol=t.symbol or symbol) for t in trades if t.order_id in by_venue_id]
        added = record_fills(session, broker.user_id, broker.id, mine, by_venue_id)
        session.flush()
        complete = [order for order in missing if recorded_quantity(session, order.id) >= order.filled_quantity]
        payloads = [
            (order.user_id, event_payload(order, order.state, "fills_recorded") | {"type": "fill"})
            for order in complete
        ]
        finals = [(order.id, order.source) for order in complete if order.is_final]
    if added:
        log.info(
            "fills_recorded", extra={"broker_id": broker_id, "symbol": symbol, "added": added, "orders": len(complete)}
        )
    for user_id, payload in payloads:
        publish(user_id, [payload])
    for order_id, source in finals:
        after_final_fill(order_id, source)
    return [payload["order_id"] for _, payload in payloads]
