"""What the dashboard and the Trading page show of a trader's money, from stored data only (no venue call on a
page view): equity across every broker and its curve (core/ledger/equity.py), the open positions of the
one ledger valued at the heartbeat's stored prices, and the market order that closes one of them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.brokers import symbol_rules
from core.candles.candle import TIMEFRAME_MS
from core.candles.marks import StoredPrices
from core.candles.sources import heartbeat
from core.exchanges.errors import InvalidOrder
from core.exchanges.rules import decimal_str, round_to_step
from core.flatten import Close, record_close
from core.ledger.entries import Source
from core.ledger.equity import (
    CURVE_POINTS,
    Baseline,
    Equity,
    Move,
    current_balances,
    curve,
    curve_timeframe,
    fill_moves,
    valued,
)
from core.ledger.fifo import match_books, open_position
from core.ledger.loading import load_ledger
from core.models import BrokerConnection, Order, VenueBalance


def _brokers(session: Session, user_id: int) -> list[BrokerConnection]:
    return list(
        session.scalars(
            select(BrokerConnection).where(BrokerConnection.user_id == user_id).order_by(BrokerConnection.id)
        )
    )


def load_equity(session: Session, user_id: int, prices: StoredPrices, now_ms: int | None = None) -> Equity:
    """Every broker's value now and the curve of their sum since the oldest connection read was made."""
    now_ms = now_ms or int(time.time() * 1000)
    brokers = _brokers(session, user_id)
    equity = Equity()
    if not brokers:
        return equity
    baselines: dict[int, list[Baseline]] = {b.id: [] for b in brokers}
    for row in session.scalars(select(VenueBalance).where(VenueBalance.broker_id.in_(list(baselines)))):
        baselines[row.broker_id].append(Baseline(row.asset, row.quantity, row.at))
    read = [b for b in brokers if baselines[b.id]]
    equity.by_broker = {b.id: None for b in brokers}
    if not read:
        return equity
    start = min(int(b.created_at.timestamp() * 1000) for b in read)
    equity.timeframe = curve_timeframe(now_ms - start, {tf: TIMEFRAME_MS[tf] for tf in heartbeat().timeframes})
    length = TIMEFRAME_MS[equity.timeframe]
    first = max(start - start % length, now_ms - now_ms % length - length * CURVE_POINTS)
    # Only the fills after the oldest baseline move today's balances, and only those after the curve's
    # first point move it: older ones are not loaded.
    oldest = min(min(row.at for row in baselines[b.id]) for b in read)
    after = min(oldest, datetime.fromtimestamp(first / 1000, UTC))
    fills = load_ledger(session, user_id, broker_ids=[b.id for b in read], after=after)
    moves: list[Move] = []
    combined: dict[str, Decimal] = {}
    for broker in read:
        own = [move for fill in fills if fill.broker_id == broker.id for move in fill_moves(fill)]
        moves.extend(own)
        balances = current_balances(baselines[broker.id], own)
        total, unvalued = valued(balances, prices.asset_now)
        equity.by_broker[broker.id] = total
        equity.unvalued.extend(asset for asset in unvalued if asset not in equity.unvalued)
        for asset, quantity in balances.items():
            combined[asset] = combined.get(asset, Decimal(0)) + quantity
    histories = {asset: prices.asset_history(asset, equity.timeframe, first) for asset in combined}
    times = list(range(first + length, now_ms, length))
    equity.points = curve(combined, moves, times, lambda asset, at: histories[asset](at))
    equity.points.append((now_ms, equity.total))
    return equity


@dataclass(frozen=True)
class PositionRow:
    """One open book of the ledger (broker × symbol × who placed it) valued at the stored price."""

    broker_id: int
    broker_label: str
    symbol: str
    base: str
    quote: str
    source: Source
    quantity: Decimal  # signed: > 0 long
    entry_price: Decimal
    mark: Decimal | None
    unrealised: Decimal | None
    tick: Decimal | None
    step: Decimal | None

    @property
    def closable(self) -> bool:
        return closable(self.source)


def closable(source: Source) -> bool:
    """Whether a market order can close this book into itself: a manual one, or a bot's or a webhook's still
    known. An OCO's, or fills without an order of ours, would leave the book open beside a new manual one."""
    return source.kind == "manual" or (source.kind in ("bot", "webhook") and (source.ref or "").isdigit())


def open_positions(
    session: Session, user_id: int, prices: StoredPrices, *, broker_id: int | None = None, symbol: str | None = None
) -> list[PositionRow]:
    brokers = {b.id: b for b in _brokers(session, user_id)}
    chosen = [broker_id] if broker_id is not None else None
    books = match_books(load_ledger(session, user_id, broker_ids=chosen, symbol=symbol))
    rows = []
    for book in (books[key] for key in sorted(books)):
        broker = brokers.get(book.broker_id)
        if broker is None or not book.lots or book.quantity == 0:
            continue
        heartbeat_symbol = prices.symbol_for(broker.venue, book.symbol)
        mark = prices.latest(heartbeat_symbol) if heartbeat_symbol else None
        position = open_position(book, {(book.broker_id, book.symbol): mark})
        if position is None:
            continue
        rules = symbol_rules(session, book.broker_id, book.symbol)
        if rules is not None and abs(position.quantity) < rules.step_size:
            continue  # dust below the venue's step is not a position anyone can close
        rows.append(
            PositionRow(
                broker.id,
                broker.label,
                book.symbol,
                book.base,
                book.quote,
                book.source,
                position.quantity,
                position.entry_price,
                mark,
                position.unrealised,
                rules.tick_size if rules else None,
                rules.step_size if rules else None,
            )
        )
    return rows


def close_position(session: Session, user_id: int, broker_id: int, symbol: str, source_key: str) -> Order:
    """Record the market order closing one open book of the trader's, as flatten records its closes (under
    the bot, or a webhook alert stored for it, so the owner's position and P&L stay right). The quantity
    comes from the ledger, never from the page. Raises InvalidOrder when there is nothing to close."""
    fills = load_ledger(session, user_id, broker_ids=[broker_id], symbol=symbol)
    book = match_books(f for f in fills if f.source.key == source_key).get((broker_id, symbol, source_key))
    if book is None or book.quantity == 0:
        raise InvalidOrder(f"no open position on {symbol} to close")
    if not closable(book.source):
        raise InvalidOrder(f"the {symbol} position of {book.source.title} is closed from the order ticket")
    rules = symbol_rules(session, broker_id, symbol)
    quantity = round_to_step(abs(book.quantity), rules.step_size) if rules else abs(book.quantity)
    if quantity <= 0 or (rules is not None and quantity < rules.min_qty):
        raise InvalidOrder(f"the {symbol} position ({decimal_str(abs(book.quantity))}) is below the minimum order")
    source = book.source
    close = Close(
        broker_id,
        source.kind,
        int(source.ref or 0),
        source.title,
        symbol,
        quantity,
        "sell" if book.quantity > 0 else "buy",
    )
    return record_close(session, user_id, close, quantity, "close at market")
