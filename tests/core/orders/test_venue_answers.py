"""Every venue answer about an order is kept raw beside it (the audit trail of its page), bounded, with
no secret: a placement, a query and a cancel against the real simulator; an answer that is not JSON and
one that is huge, through a proxy in front of it."""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import select

from core.exchanges.answers import MAX_ANSWER_CHARS
from core.infra.db import session_scope
from core.models import VenueAnswer
from core.orders import placement
from tests.trading_support import Trader


def _trail(order_id: int) -> list[VenueAnswer]:
    with session_scope() as session:
        rows = list(
            session.scalars(select(VenueAnswer).where(VenueAnswer.order_id == order_id).order_by(VenueAnswer.id))
        )
        session.expunge_all()
        return rows


def test_the_answers_to_place_query_and_cancel_are_kept_once_each_without_secrets(trader: Trader):
    order_id = trader.order(type="limit", price=Decimal("1000"))
    assert placement.place(order_id).state == "open"
    placement.sync(order_id)
    placement.sync(order_id)  # the same answer again: kept once
    assert placement.cancel(order_id).state == "cancelled"
    trail = _trail(order_id)
    kinds = [row.kind for row in trail]
    assert kinds.count("place") == 1 and kinds.count("cancel") == 1 and kinds.count("query") == 2
    placed = trail[0]
    assert (placed.http_status, placed.path) == (200, "POST /api/v3/order")
    assert placed.payload["clientOrderId"] == trader.reload(order_id).client_order_id
    assert placed.payload["status"] == "NEW"
    assert {row.payload["status"] for row in trail if row.kind == "query"} == {"NEW", "CANCELED"}
    text = json.dumps([row.payload for row in trail]) + " ".join(row.path for row in trail)
    assert trader.api_key not in text and "signature" not in text


def test_an_answer_that_is_not_json_is_kept_as_text(trader: Trader, garbling_proxy):
    trader.point_at(garbling_proxy.url)
    order_id = trader.order()
    assert placement.place(order_id).state == "filled"  # found by its client order id after the garbled ack
    garbled = [row for row in _trail(order_id) if row.kind == "place" and row.path == "POST /api/v3/order"]
    assert garbled and garbled[0].payload == {"not_json": True, "text": "<html>upstream hiccup</html>"}
    assert any(row.payload.get("status") == "FILLED" for row in _trail(order_id))


def test_a_huge_answer_is_kept_bounded(trader: Trader, garbling_proxy):
    garbling_proxy.garble_orders = False
    garbling_proxy.pad_lookups = 200_000
    trader.point_at(garbling_proxy.url)
    order_id = trader.order(type="limit", price=Decimal("1000"))
    assert placement.place(order_id).state == "open"
    assert placement.sync(order_id).state == "open"  # the venue's answer still reads: only its record is cut
    [query] = [row for row in _trail(order_id) if row.kind == "query"]
    assert query.payload["truncated"] is True and query.payload["length"] > 200_000
    assert len(query.payload["text"]) == MAX_ANSWER_CHARS and query.payload["text"].startswith("{")
