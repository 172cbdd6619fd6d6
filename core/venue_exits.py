"""Protective exits changed at the venue: a bot's or a webhook's stop-loss / take-profit that someone
cancelled or changed there (by hand in the exchange's app), found by reconciliation (core.reconciliation).

A protective exit is a bot's non-market order (core.bots.bot_orders) or a webhook's order linked to its
entry by `oco_group` (core.webhooks.protection). Cancelled at the venue means: the venue reports it
cancelled and we never asked (core.orders.cancel_marks). Changed means: still open, but its quantity
or price is not ours. Either is noted as a finding on the bot or webhook (the flag its page shows),
told, and, unless `reconciliation.replace_protection` is off, placed again (a changed one is cancelled
first) for what the position still holds: nothing when it was closed meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from core.exchanges.models import VenueOrder, oco_leg_ids
from core.infra.config import get_settings
from core.infra.db import session_scope, utcnow
from core.ledger.positions import bot_position, net_position
from core.models import BrokerConnection, Order, VenueAnswer, VenueFinding, Webhook, WebhookAlert
from core.notifications import events as notifications
from core.orders import dispatch, placement
from core.orders.cancel_marks import cancel_was_requested
from core.orders.states import OrderState
from core.orders.submit import OrderIntent, record_order
from core.webhooks.protection import GROUP_PREFIX

log = logging.getLogger(__name__)

LOOK_BACK = timedelta(days=1)  # a cancel older than this when first seen is left to the trader
KINDS = ("protection_cancelled", "protection_changed")
PROTECTIVE = or_(
    and_(Order.source == "bot", Order.type != "market"),
    and_(Order.source == "webhook", Order.oco_group.startswith(GROUP_PREFIX)),
)


@dataclass(frozen=True)
class ExitFinding:
    order_id: int
    kind: str
    replacement_order_id: int | None


def _owner(session: Session, order: Order) -> tuple[int | None, Webhook | None]:
    if order.source == "bot":
        return int(order.source_ref or 0) or None, None
    alert = session.get(WebhookAlert, int(order.source_ref or 0))
    webhook = session.get(Webhook, alert.webhook_id) if alert and alert.webhook_id else None
    return None, webhook


def still_needed(session: Session, order: Order, bot_id: int | None, webhook: Webhook | None) -> Decimal:
    """What the position still holds for this exit to close (0: nothing, it was closed meanwhile)."""
    if bot_id is not None:
        held = bot_position(session, bot_id, order.symbol).quantity
    elif webhook is not None:
        held = net_position(session, webhook, order.symbol)
    else:
        return Decimal(0)
    held = held if order.side == "sell" else -held  # a sell exit protects a long, a buy exit a short
    remaining = (order.quantity or Decimal(0)) - order.filled_quantity
    return max(min(remaining, held), Decimal(0))


def _replace(session: Session, order: Order, quantity: Decimal) -> int:
    intent = OrderIntent(
        broker_id=order.broker_id,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        quantity=quantity,
        price=order.price,
        stop_price=order.stop_price,
        time_in_force=order.time_in_force,
        source=order.source,
        source_ref=order.source_ref,
        oco_group=order.oco_group,
        trail_pct=order.trail_pct,
        ladder_group=order.ladder_group,
    )
    return record_order(session, order.user_id, intent).id


def _outcome(replacement: int | None, replace: bool, cancelled: bool) -> str:
    if not cancelled:
        return "our cancel of it failed: not placed again"
    if replacement:
        return f"placed again as #{replacement}"
    return "not placed again: the position no longer needs it" if replace else "not placed again (setting)"


def _settle(finding_id: int, cancelled: bool) -> ExitFinding:
    """Place the exit again (when allowed and still needed) and complete the finding."""
    replace = get_settings().file.reconciliation.replace_protection
    with session_scope() as session:
        finding = session.get_one(VenueFinding, finding_id)
        order = session.get_one(Order, finding.order_id)
        webhook = session.get(Webhook, finding.webhook_id) if finding.webhook_id else None
        needed = still_needed(session, order, finding.bot_id, webhook) if replace and cancelled else Decimal(0)
        replacement = _replace(session, order, needed) if needed > 0 else None
        finding.replacement_order_id = replacement
        finding.detail = {**finding.detail, "outcome": _outcome(replacement, replace, cancelled)}
        owner = f"bot #{finding.bot_id}" if finding.bot_id else (f"webhook {webhook.name}" if webhook else "order")
        link = (
            f"/bots/{finding.bot_id}"
            if finding.bot_id
            else (f"/webhooks/{webhook.id}" if webhook else f"/trading/orders/{order.id}")
        )
        title = f"Protective {order.type.replace('_', ' ')} of {owner} {finding.detail['what']} at the venue"
        body = f"Order #{order.id} ({order.side} {order.symbol}): {finding.detail['outcome']}."
        user_id, kind, order_id = order.user_id, finding.kind, order.id
    if replacement is not None:
        dispatch.enqueue_order(replacement)
    notifications.venue_finding(user_id, kind, title, body, link, f"{kind}:{order_id}")
    log.warning("protection_changed_at_venue", extra={"order_id": order_id, "kind": kind, "replacement": replacement})
    return ExitFinding(order_id, kind, replacement)


def _flag(session: Session, broker: BrokerConnection, order: Order, kind: str, what: str) -> int:
    bot_id, webhook = _owner(session, order)
    finding = VenueFinding(
        user_id=broker.user_id,
        broker_id=broker.id,
        kind=kind,
        detail={"what": what},
        order_id=order.id,
        bot_id=bot_id,
        webhook_id=webhook.id if webhook else None,
    )
    session.add(finding)
    session.flush()
    return finding.id


def _unflagged(broker_id: int, states: Iterable[str]) -> Select[Order]:
    flagged = select(VenueFinding.id).where(VenueFinding.order_id == Order.id, VenueFinding.kind.in_(KINDS))
    return select(Order).where(
        Order.broker_id == broker_id, PROTECTIVE, Order.state.in_(list(states)), ~flagged.exists()
    )


def check_exits(broker_id: int, listing: list[VenueOrder] | None) -> list[ExitFinding]:
    """The connection's protective exits cancelled at the venue (seen by any sync since), and, with the
    venue's open orders at hand, the ones changed there (cancelled by us before being placed again)."""
    cancelled_ids: list[int] = []
    changed: list[tuple[int, int]] = []  # (finding, order)
    with session_scope() as session:
        broker = session.get_one(BrokerConnection, broker_id)
        # An order with no answer kept was cancelled before answers were kept (an upgrade): whose cancel
        # it was cannot be told, so it is left alone rather than placed again beside a newer exit.
        heard = select(VenueAnswer.id).where(VenueAnswer.order_id == Order.id).exists()
        cancelled = session.scalars(
            _unflagged(broker_id, [OrderState.CANCELLED.value]).where(
                Order.venue_order_id.is_not(None), Order.updated_at >= utcnow() - LOOK_BACK, heard
            )
        ).all()
        for order in cancelled:
            if not cancel_was_requested(session, order.id):
                cancelled_ids.append(_flag(session, broker, order, "protection_cancelled", "was cancelled"))
        by_client = {o.client_order_id: o for o in listing or () if o.client_order_id}
        for order in session.scalars(_unflagged(broker_id, [OrderState.OPEN.value])) if by_client else ():
            what = changed_at_venue(order, by_client)
            if what is not None:
                changed.append((_flag(session, broker, order, "protection_changed", what), order.id))
    findings = [_settle(finding_id, cancelled=True) for finding_id in cancelled_ids]
    for finding_id, order_id in changed:  # ours, so the cancel is marked as ours
        findings.append(_settle(finding_id, cancelled=placement.cancel(order_id).state == OrderState.CANCELLED.value))
    return findings


def changed_at_venue(order: Order, by_client: dict[str, VenueOrder]) -> str | None:
    """How the venue's open orders (by client id) show our open exit changed, or None. An OCO the venue
    lists with one leg, nothing filled, lost the other there (an emulated OCO: one leg cancelled by hand;
    a filled leg would have ended it when it was synced)."""
    client_id = order.client_order_id or ""
    if order.type == "oco":
        legs = [by_client.get(leg_id) for leg_id in oco_leg_ids(client_id)]
        resting = [leg for leg in legs if leg is not None]
        if len(resting) == 1 and resting[0].filled_qty == 0:
            lost = "take-profit" if legs[0] is None else "stop-loss"
            return f"lost its {lost} leg (cancelled)"
        return None
    seen = by_client.get(client_id)
    if seen is None:
        return None
    if (seen.quantity is not None and seen.quantity != order.quantity) or (
        seen.price is not None and order.price is not None and seen.price != order.price
    ):
        return f"was changed (quantity {seen.quantity}, price {seen.price})"
    return None


def flags(
    session: Session, *, bot_id: int | None = None, webhook_id: int | None = None, limit: int = 10
) -> list[VenueFinding]:
    """The latest findings on a bot's or a webhook's protective exits: the flag its page shows."""
    owner = VenueFinding.bot_id == bot_id if bot_id is not None else VenueFinding.webhook_id == webhook_id
    return list(session.scalars(select(VenueFinding).where(owner).order_by(VenueFinding.id.desc()).limit(limit)))
