"""Postgres records of the engine: intents before sending, leg results after, the position.

Writes that happen after orders were sent must never be lost because Postgres blinked: they are
kept in order in memory and replayed (`flush`) until the database answers again. The write that
happens before sending (the intent) is not deferred: no record, no trade.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.db import get_engine, utcnow
from core.models.arb import INTENT_OPEN_STATES, ArbIntent, ArbLeg, ArbPosition

log = logging.getLogger(__name__)
DB_ERRORS = (OperationalError, DBAPIError, OSError)


class StoreUnavailable(Exception):
    """Postgres did not answer; the caller decides whether to defer or to give up."""


def sizes_text(sizes: dict[str, Decimal]) -> dict[str, str]:
    return {venue: str(size) for venue, size in sizes.items()}


def sizes_from(raw: dict | None) -> dict[str, Decimal]:
    return {venue: Decimal(size) for venue, size in (raw or {}).items()}


class ArbStore:
    def __init__(self, database_url: str | None = None):
        self._sessions = sessionmaker(bind=get_engine(database_url), expire_on_commit=False)
        self.backlog: list[tuple[str, Callable[[Session], Any]]] = []

    def _run(self, fn: Callable[[Session], Any]) -> Any:
        try:
            with self._sessions() as session, session.begin():
                return fn(session)
        except DB_ERRORS as exc:
            raise StoreUnavailable(str(exc).splitlines()[0][:200]) from exc

    def run_or_defer(self, what: str, fn: Callable[[Session], Any]) -> None:
        """Apply now if the backlog is empty and Postgres answers, else queue behind earlier writes."""
        self.backlog.append((what, fn))
        self.flush()

    def flush(self) -> bool:
        """Replay deferred writes in order; True when nothing is left."""
        while self.backlog:
            what, fn = self.backlog[0]
            try:
                self._run(fn)
            except StoreUnavailable as exc:
                log.warning("db_write_deferred", extra={"write": what, "pending_writes": len(self.backlog),
                                                        "error": str(exc)})
                return False
            self.backlog.pop(0)
        return True

    # --- intents and legs ---------------------------------------------------------------------

    def create_intent(self, *, pair: str, kind: str, direction: str, size: Decimal, spread_bps: Decimal | None,
                      before: dict[str, Decimal], legs: list[dict]) -> tuple[int, list[int]]:
        """Intent + its first leg attempts in one transaction, before anything is sent."""

        def write(session: Session) -> tuple[int, list[int]]:
            intent = ArbIntent(pair=pair, kind=kind, direction=direction, size=size, spread_bps=spread_bps,
                               state="pending", before=sizes_text(before), outcome={})
            intent.legs = [ArbLeg(**leg) for leg in legs]
            session.add(intent)
            session.flush()
            return intent.id, [leg.id for leg in intent.legs]

        return self._run(write)

    def add_leg_attempt(self, intent_id: int, leg: dict) -> None:
        self.run_or_defer("add_leg", lambda s: s.add(ArbLeg(intent_id=intent_id, **leg)))

    def record_leg(self, client_id: str, **fields: Any) -> None:
        def write(session: Session) -> None:
            leg = session.scalars(select(ArbLeg).where(ArbLeg.client_id == client_id)).one_or_none()
            if leg is not None:
                for name, value in fields.items():
                    setattr(leg, name, value)

        self.run_or_defer(f"leg {client_id}", write)

    def finish_intent(self, intent_id: int, state: str, outcome: dict) -> None:
        def write(session: Session) -> None:
            intent = session.get(ArbIntent, intent_id)
            if intent is not None:
                intent.state, intent.outcome = state, outcome

        self.run_or_defer(f"intent {intent_id}", write)

    def mark_sent(self, intent_id: int) -> None:
        def write(session: Session) -> None:
            intent = session.get(ArbIntent, intent_id)
            if intent is not None and intent.state == "pending":
                intent.state = "sent"

        self.run_or_defer(f"intent {intent_id} sent", write)

    def open_intents(self, pair: str) -> list[dict]:
        def read(session: Session) -> list[dict]:
            rows = session.scalars(select(ArbIntent).where(ArbIntent.pair == pair,
                                                           ArbIntent.state.in_(INTENT_OPEN_STATES))
                                   .order_by(ArbIntent.id)).all()
            return [{"id": r.id, "kind": r.kind, "direction": r.direction, "size": r.size, "state": r.state,
                     "before": sizes_from(r.before),
                     "legs": [{"venue": leg.venue, "side": leg.side, "size": leg.size, "state": leg.state,
                               "client_id": leg.client_id, "filled_size": leg.filled_size} for leg in r.legs]}
                    for r in rows]

        return self._run(read)

    def recent_intents(self, pair: str, limit: int = 20) -> list[ArbIntent]:
        return self._run(lambda s: list(s.scalars(select(ArbIntent).where(ArbIntent.pair == pair)
                                                  .order_by(ArbIntent.id.desc()).limit(limit)).all()))

    # --- position -----------------------------------------------------------------------------

    def load_position(self, pair: str) -> dict | None:
        def read(session: Session) -> dict | None:
            row = session.get(ArbPosition, pair)
            if row is None:
                return None
            return {"direction": row.direction, "sizes": sizes_from(row.sizes),
                    "entry_prices": sizes_from(row.entry_prices), "entry_spread_bps": row.entry_spread_bps,
                    "cash": row.cash, "realized_pnl": row.realized_pnl, "pnl_day": row.pnl_day,
                    "halted_reason": row.halted_reason, "opened_at": row.opened_at}

        return self._run(read)

    def save_position(self, pair: str, *, direction: str | None, sizes: dict[str, Decimal],
                      entry_prices: dict[str, Decimal], entry_spread_bps: Decimal | None, cash: Decimal,
                      realized_pnl: Decimal, pnl_day: date, halted_reason: str | None) -> None:
        def write(session: Session) -> None:
            row = session.get(ArbPosition, pair) or ArbPosition(pair=pair)
            if row.opened_at is None and direction is not None:
                row.opened_at = utcnow()
            if direction is None:
                row.opened_at = None
            row.direction, row.sizes, row.entry_prices = direction, sizes_text(sizes), sizes_text(entry_prices)
            row.entry_spread_bps, row.cash, row.realized_pnl = entry_spread_bps, cash, realized_pnl
            row.pnl_day, row.halted_reason = pnl_day, halted_reason
            session.add(row)

        self.run_or_defer(f"position {pair}", write)
