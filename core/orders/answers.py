"""What the venue answered about one order: the typed view our state follows (`view_of`) and the raw
answers kept beside it as the order's audit trail (`store`; heard by core.exchanges.answers)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.exchanges.answers import HeardAnswer
from core.exchanges.models import OcoResult, VenueOrder
from core.models import VenueAnswer


@dataclass(frozen=True)
class VenueView:
    """One order as the venue sees it (an OCO folded into one status)."""

    status: str
    venue_order_id: str | None
    filled: Decimal
    average_price: Decimal | None
    leg_ids: tuple[str, ...] = ()


def view_of(answer: VenueOrder | OcoResult) -> VenueView:
    if isinstance(answer, VenueOrder):
        return VenueView(
            answer.status, answer.venue_order_id, answer.filled_qty, answer.avg_price, (answer.venue_order_id,)
        )
    legs = answer.orders
    leg_ids = tuple(leg.venue_order_id for leg in legs)
    traded = [leg for leg in legs if leg.filled_qty > 0]
    venue_id = answer.venue_list_id or (legs[0].venue_order_id if legs else None)
    if traded:
        leg = traded[0]  # an OCO trades on one leg only
        return VenueView(leg.status, venue_id, leg.filled_qty, leg.avg_price, leg_ids)
    if legs and all(leg.is_final for leg in legs):
        status = "rejected" if all(leg.status == "rejected" for leg in legs) else "cancelled"
        return VenueView(status, venue_id, Decimal(0), None, leg_ids)
    return VenueView("open", venue_id, Decimal(0), None, leg_ids)


# Built once (a statement built per answer, with its rows inlined, was compiled again every time).
_STORE = insert(cast(Table, VenueAnswer.__table__)).on_conflict_do_nothing(index_elements=["order_id", "digest"])


def store(session: Session, order_id: int, heard: Iterable[HeardAnswer]) -> None:
    """Add the answers to the order's trail in the caller's transaction; one already kept (same digest:
    a resting order queried again) is not kept twice."""
    store_all(session, [(order_id, heard)])


def store_all(session: Session, heard_by_order: Iterable[tuple[int, Iterable[HeardAnswer]]]) -> None:
    """`store` for several orders, in one statement."""
    rows = [
        {
            "order_id": order_id,
            "kind": answer.kind,
            "at": answer.at,
            "http_status": answer.http_status,
            "path": answer.path,
            "digest": answer.digest,
            "payload": answer.payload,
        }
        for order_id, heard in heard_by_order
        for answer in heard
    ]
    if rows:
        session.execute(_STORE, rows)
