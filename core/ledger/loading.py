"""The ledger and the marks from the database and the venues: a user's fills (and only theirs) with
their sources named after their bot or webhook, the broker titles, the venues' last prices."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from core.exchanges.errors import ExchangeError
from core.ledger.entries import LedgerFill, Source, split_symbol
from core.ledger.fifo import MarkKey
from core.ledger.fills import ZERO
from core.models import Bot, BrokerConnection, Fill, Order, SymbolRule, Webhook, WebhookAlert
from core.webhooks.positions import webhook_orders

log = logging.getLogger(__name__)


def _ledger_query() -> Select:
    return (
        select(
            Fill.id,
            Fill.broker_id,
            Fill.symbol,
            Fill.side,
            Fill.quantity,
            Fill.price,
            Fill.traded_at,
            Fill.fee,
            Fill.fee_asset,
            Fill.order_id,
            Fill.venue_trade_id,
            Order.source,
            Order.source_ref,
            SymbolRule.base,
            SymbolRule.quote,
        )
        .outerjoin(Order, Fill.order_id == Order.id)
        .outerjoin(SymbolRule, (SymbolRule.broker_id == Fill.broker_id) & (SymbolRule.symbol == Fill.symbol))
        .order_by(Fill.traded_at, Fill.id)
    )


_SOURCE = 11  # the columns of _ledger_query: Order.source, Order.source_ref


def _rows(session: Session, query: Select) -> list[tuple]:
    """The query's rows as the driver's plain tuples (its columns need no conversion of SQLAlchemy's):
    a ledger is 10^5 rows, and Row objects cost as much again as reading them."""
    connection = session.connection()
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    driver = connection.connection.driver_connection
    if driver is None:
        raise RuntimeError("the session's connection is closed")
    with driver.cursor() as cursor:
        cursor.execute(str(compiled), compiled.params)
        return cursor.fetchall()


def _ledger_fills(rows: Sequence[tuple], source_of: Callable[[int | None, str | None, str | None], Source]):
    """The rows as ledger fills: plain tuples unpacked, each symbol's assets split once."""
    assets: dict[tuple[str, str | None, str | None], tuple[str, str]] = {}
    fills = []
    for fill_id, broker_id, symbol, side, quantity, price, traded_at, fee, fee_asset, order_id, trade_id, *rest in rows:
        kind, ref, base, quote = rest
        pair = assets.get((symbol, base, quote))
        if pair is None:
            pair = assets[(symbol, base, quote)] = (base, quote) if base else split_symbol(symbol)
        fills.append(
            LedgerFill(
                fill_id,
                broker_id,
                symbol,
                pair[0],
                pair[1],
                side,
                quantity,
                price,
                traded_at,
                fee or ZERO,
                fee_asset,
                order_id,
                source_of(order_id, kind, ref),
                trade_id,
            )
        )
    return fills


def load_ledger(
    session: Session,
    user_id: int,
    *,
    broker_ids: Collection[int] | None = None,
    symbol: str | None = None,
    until: datetime | None = None,
    after: datetime | None = None,
    after_id: int | None = None,
) -> list[LedgerFill]:
    """The user's fills (and only theirs), with base/quote and the source of the order behind each:
    of some brokers, of one symbol, before `until` (whole books: a book is one broker and one symbol);
    `after` leaves out the older ones (for balance moves, not books: a book needs all its fills), `after_id`
    those up to that id (the fills added since a kept view: core/ledger/cache.py)."""
    query = _ledger_query().where(Fill.user_id == user_id)
    if broker_ids is not None:
        query = query.where(Fill.broker_id.in_(broker_ids))
    if symbol is not None:
        query = query.where(Fill.symbol == symbol)
    if until is not None:
        query = query.where(Fill.traded_at < until)
    if after is not None:
        query = query.where(Fill.traded_at > after)
    if after_id is not None:
        query = query.where(Fill.id > after_id)
    rows = _rows(session, query)
    return _ledger_fills(rows, _source_resolver(session, user_id, rows))


def load_source(session: Session, source: Source, symbol: str) -> list[LedgerFill]:
    """The fills of one bot's or one webhook's orders on `symbol` (the rows of its statistics book)."""
    placed: ColumnElement[bool]
    if source.kind == "bot":
        placed = (Order.source == "bot") & (Order.source_ref == source.ref)
    elif source.kind == "webhook":
        placed = Order.id.in_(webhook_orders(int(source.ref or 0)).with_only_columns(Order.id))
    else:
        raise ValueError(f"positions are asked per bot or webhook, not per {source.kind!r}")
    return _ledger_fills(_rows(session, _ledger_query().where(placed, Fill.symbol == symbol)), lambda *_: source)


def _source_resolver(session: Session, user_id: int, rows: Sequence[tuple]):
    """Bot orders carry the bot id, webhook orders the alert id: name them after their bot and webhook."""
    refs = defaultdict(set)
    for kind, ref in {row[_SOURCE : _SOURCE + 2] for row in rows}:
        if kind in ("bot", "webhook") and ref:
            refs[kind].add(ref)
    bots = {
        str(bot_id): name
        for bot_id, name in session.execute(
            select(Bot.id, Bot.name).where(
                Bot.user_id == user_id, func.cast(Bot.id, Order.source_ref.type).in_(refs["bot"])
            )
        )
    }
    alerts = {
        str(alert_id): (webhook_id, name)
        for alert_id, webhook_id, name in session.execute(
            select(WebhookAlert.id, Webhook.id, Webhook.name)
            .join(Webhook, WebhookAlert.webhook_id == Webhook.id)
            .where(Webhook.user_id == user_id, func.cast(WebhookAlert.id, Order.source_ref.type).in_(refs["webhook"]))
        )
    }

    known: dict[tuple[bool, str | None, str | None], Source] = {}

    def resolve(order_id: int | None, kind: str | None, ref: str | None) -> Source:
        """One Source per (order or not, kind, ref), shared by its fills."""
        key = (order_id is None, kind, ref)
        source = known.get(key)
        if source is None:
            source = known[key] = _resolve(order_id, kind, ref)
        return source

    def _resolve(order_id: int | None, kind: str | None, ref: str | None) -> Source:
        if order_id is None:
            return Source("none")
        if kind == "bot":
            return Source("bot", ref, f"Bot · {bots[ref]}" if ref in bots else f"Bot #{ref} (deleted)")
        if kind == "webhook":
            if ref in alerts:
                webhook_id, name = alerts[ref]
                return Source("webhook", str(webhook_id), f"Webhook · {name}")
            return Source("webhook", "deleted", "Webhook (deleted)")
        return Source(kind or "manual")

    return resolve


def broker_titles(session: Session, user_id: int) -> dict[int, str]:
    return {
        broker.id: broker.label
        for broker in session.scalars(
            select(BrokerConnection).where(BrokerConnection.user_id == user_id).order_by(BrokerConnection.label)
        )
    }


def fetch_marks(
    session: Session,
    user_id: int,
    keys: Iterable[MarkKey],
    *,
    timeout: float = 5.0,
) -> dict[MarkKey, Decimal | None]:
    """The venue's last price of each (broker, symbol); None where the venue does not answer."""
    from core.brokers import exchange_for, last_price  # core.brokers pulls the adapters in: only when marking

    keys = sorted(set(keys))
    brokers = {
        b.id: b
        for b in session.scalars(
            select(BrokerConnection).where(
                BrokerConnection.user_id == user_id, BrokerConnection.id.in_({k[0] for k in keys})
            )
        )
    }
    exchanges = {}
    for broker_id, broker in brokers.items():
        try:
            exchanges[broker_id] = exchange_for(broker, max_attempts=1, timeout=timeout)
        except ValueError as err:  # a connection no adapter serves (unknown venue, missing passphrase): no price
            log.warning("statistics_mark_unavailable", extra={"broker_id": broker_id, "error": str(err)})

    def mark(key: MarkKey) -> Decimal | None:
        exchange = exchanges.get(key[0])
        if exchange is None:
            return None
        try:
            return last_price(exchange, key[1])
        except ExchangeError as err:  # the page shows "no price"; it must not fail for a venue's answer
            log.warning(
                "statistics_mark_failed", extra={"broker_id": key[0], "symbol": key[1], "error": str(err)[:200]}
            )
            return None

    try:
        with ThreadPoolExecutor(max_workers=min(8, len(keys) or 1)) as pool:
            return dict(zip(keys, pool.map(mark, keys), strict=True))
    finally:
        for exchange in exchanges.values():
            exchange.close()
