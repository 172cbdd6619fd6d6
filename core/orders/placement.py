"""The order pipeline's domain: place, sync and cancel one order, exactly once, truthfully.

Each function takes an order id and is safe to run again (a redelivered Celery task, a reconciliation
pass, two workers at once): the row is locked while its state is read and changed, the `sent` state
is committed before the venue is called, and the venue only ever sees the order's one client order
id, so a retry finds the first attempt instead of creating a second order.

A venue that does not answer leaves the order `unknown`; only a query by client order id decides
what happened. Every state change is published on the user's Redis channel after it is committed
(core.orders.events); the fills the venue reports go to the ledger (core.orders.fills).

Enqueueing an order for a worker is core.orders.dispatch (`enqueue_order`); this module is what the
worker runs (`place`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session, noload

from core.brokers import exchange_for
from core.exchanges.answers import listen
from core.exchanges.errors import (
    AuthError,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    OrderWindowPassed,
    RateLimited,
)
from core.exchanges.models import OcoRequest, OcoResult, OrderRequest, oco_leg_ids
from core.exchanges.ratelimit import RequestClass, priority
from core.exchanges.spot.base import Exchange
from core.halt import HALTED, trading_halted
from core.infra.db import session_scope, utcnow
from core.models import BrokerConnection, Order
from core.orders import answers, trailing_watch
from core.orders.answers import view_of
from core.orders.cancel_marks import mark_cancel_requested
from core.orders.events import event_payload, publish
from core.orders.fills import after_final_fill, fills_scheduled, record_answer_fills, record_order_fills
from core.orders.states import OrderState, can_transition
from core.orders.useful_life import manual_wait_s, useful_life_end
from core.orders.venue_call import VenueCall, call_venue, lookup
from core.orders.venue_request import fit_to_rules, oco_request_of, request_of, store_rounded

log = logging.getLogger(__name__)

# An order the venue does not know is re-sent only once no earlier attempt can still be in flight
# (adapter timeouts are 10 s, with retries) ...
RESEND_AFTER = timedelta(seconds=45)
# ... and never once the market may have moved far from what the trader saw: then it is rejected.
RESEND_UNTIL = timedelta(minutes=10)
# Refused before anything was sent: the trader must change the order.
REFUSALS = (InvalidOrder, InsufficientFunds, AuthError)
VENUE_STATUS = {
    "open": OrderState.OPEN,
    "partially_filled": OrderState.PARTIALLY_FILLED,
    "filled": OrderState.FILLED,
    "cancelled": OrderState.CANCELLED,
    "rejected": OrderState.REJECTED,
    "expired": OrderState.EXPIRED,
}
WAITING_STATES = frozenset({OrderState.SENT.value, OrderState.UNKNOWN.value})


@dataclass
class Outcome:
    """What a pipeline step did to one order (for tasks, logs and the CLI)."""

    order_id: int
    state: str
    changed: bool = False
    message: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "state": self.state, "changed": self.changed, "message": self.message}


def _move(order: Order, target: OrderState, cause: str, outcome: Outcome, detail: dict[str, Any] | None = None) -> bool:
    """One transition, recorded for publishing; an illegal one (a stale answer) is logged, not applied."""
    if order.state == target.value and target != OrderState.PARTIALLY_FILLED:
        return False
    if not can_transition(order.state, target):
        log.warning(
            "order_transition_ignored",
            extra={"order_id": order.id, "from_state": order.state, "to_state": target.value, "cause": cause},
        )
        return False
    previous = order.state
    order.move_to(target, cause, detail)
    order.updated_at = utcnow()
    outcome.state, outcome.changed = order.state, True
    outcome.events.append(event_payload(order, previous, cause))
    return True


# Built once: building and keying the statement again for every order cost more than running it.
_LOCK_ORDER = select(Order).where(Order.id == bindparam("order_id")).options(noload(Order.events)).with_for_update()


def _locked(session: Session, order_id: int) -> Order:
    """The order row, locked. Its history is not loaded: steps only append to it (a transition adds
    one event row), and loading it first costs a round trip and an early flush on the hot path."""
    order = session.scalar(_LOCK_ORDER, {"order_id": order_id})
    if order is None:
        raise LookupError(f"no order {order_id}")
    return order


def _ended_filled(order: Order, outcome: Outcome) -> bool:
    """This step moved the order to a final state with some quantity traded."""
    return outcome.changed and order.is_final and (order.filled_quantity or 0) > 0


def _finish(outcome: Outcome, user_id: int) -> Outcome:
    if outcome.events:
        publish(user_id, outcome.events)
    return outcome


# ---- applying what the venue says -----------------------------------------------------------------


def _apply(order: Order, view: answers.VenueView, cause: str, outcome: Outcome) -> None:
    if view.venue_order_id:
        order.venue_order_id = view.venue_order_id
    target = VENUE_STATUS[view.status]
    if order.state == target.value and view.filled == order.filled_quantity:
        return  # nothing new
    order.filled_quantity = view.filled
    order.average_price = view.average_price
    detail: dict[str, Any] = {"filled": str(view.filled)}
    if order.type == "oco":
        detail["legs"] = list(view.leg_ids)
    _move(order, target, cause, outcome, detail)


def _reject(order: Order, err: ExchangeError, outcome: Outcome, cause: str) -> None:
    order.error_kind = err.kind if err.kind != "unknown" else "rejected"
    order.error_message = str(err)[:2000]
    _move(order, OrderState.REJECTED, cause, outcome, {"error": str(err)[:500], "code": err.code})


def _mark_unknown(order: Order, err: Exception, outcome: Outcome, cause: str) -> None:
    order.error_kind = getattr(err, "kind", "unavailable")
    order.error_message = (
        f"{err} — the venue did not confirm; the order is checked by its client order id before anything is sent again"
    )[:2000]
    _move(order, OrderState.UNKNOWN, cause, outcome, {"error": str(err)[:500]})


# ---- place --------------------------------------------------------------------------------------


@dataclass
class PreparedOrder:
    """An order moved to `sent` (or rejected by the venue's rules) in its caller's transaction: what to
    publish and send once that transaction has committed (see send_prepared)."""

    order_id: int
    user_id: int
    outcome: Outcome
    exchange: Exchange | None = None
    request: OrderRequest | OcoRequest | None = None  # None: rejected, nothing to send
    deadline: float | None = None  # epoch seconds: the signal's useful life (see useful_life_end)


def prepare(
    session: Session, order: Order, *, offline: bool = False, halted: bool | None = None
) -> PreparedOrder | None:
    """Fit a `new` order (locked, or recorded in this transaction) to its venue's rules and move it to
    `sent`, or to `rejected` when the rules refuse it. Raises ExchangeError when the markets could not
    be loaded: the order is still `new` and nothing was sent. `offline`: None instead of loading them
    (a caller holding other locks must not wait on the venue). While trading is halted by the
    administrator (core/halt.py) the order ends `rejected` with that reason, nothing sent."""
    outcome = Outcome(order.id, order.state)
    prepared = PreparedOrder(order.id, order.user_id, outcome)
    if halted is None:  # else read by the caller, once for the orders of its transaction
        with session.no_autoflush:  # the switch does not depend on the order: no separate UPDATE of it first
            halted = trading_halted(session)
    if halted:
        order.error_kind, order.error_message = "halted", HALTED
        _move(order, OrderState.REJECTED, "trading_halted", outcome, {"error": HALTED})
        return prepared
    exchange = exchange_for(session.get_one(BrokerConnection, order.broker_id))
    if offline and not exchange.has_markets:
        return None
    triggered_at = None
    try:
        request = request_of(order)
        if (
            isinstance(request, OrderRequest)
            and order.type == "trailing_stop"
            and not exchange.native_trailing(request)
        ):
            # Emulated: watched while `new`, sent as a market order once its watch is claimed.
            triggered_at = trailing_watch.arm(session, order).triggered_at
            if triggered_at is None:
                outcome.message = trailing_watch.WATCHING
                return prepared
            request = trailing_watch.market_request(order)
        request = fit_to_rules(exchange, request)
    except REFUSALS as err:
        order.error_kind, order.error_message = err.kind, str(err)[:2000]
        _move(order, OrderState.REJECTED, "validation", outcome, {"error": str(err)[:500]})
        return prepared
    adjusted = store_rounded(order, request)
    _move(order, OrderState.SENT, "placement", outcome, {"rounded_from": adjusted} if adjusted else None)
    prepared.exchange, prepared.request = exchange, request
    prepared.deadline = useful_life_end(session, order, since=triggered_at)  # a stop lives from its trigger
    return prepared


def send_prepared(prepared: PreparedOrder) -> Outcome:
    """After the commit of `prepare`'s transaction: tell the pages, call the venue, record its answer."""
    outcome = prepared.outcome
    publish(prepared.user_id, outcome.events)
    outcome.events = []
    if prepared.request is None:
        return outcome
    if prepared.exchange is None:
        raise ValueError(f"order {prepared.order_id}: a prepared request without its exchange")
    return _send(prepared.order_id, prepared.exchange, prepared.request, outcome, prepared.user_id, prepared.deadline)


def place(order_id: int) -> Outcome:
    """Send a `new` order to its venue once. An order already past `new` is synced instead."""
    with session_scope() as session:
        order = _locked(session, order_id)
        if order.state in WAITING_STATES:
            prepared = None
        elif order.state != OrderState.NEW.value:
            return Outcome(order.id, order.state, message=f"already {order.state}")
        else:
            # Loading markets may fail (venue down): still `new`, nothing sent; the task retries.
            prepared = prepare(session, order)
    return send_prepared(prepared) if prepared is not None else sync(order_id)


def _send(
    order_id: int,
    exchange: Exchange,
    request: OrderRequest | OcoRequest,
    outcome: Outcome,
    user_id: int,
    deadline: float | None,
) -> Outcome:
    """Call the venue (the `sent` state is already committed) and record its answer."""
    called = call_venue(exchange, request, deadline)
    with session_scope() as session:
        # Not waiting for this commit's WAL flush is safe: if Postgres loses it, the order is still
        # `sent` (committed durably before the call) and the next sync asks the venue by client order id.
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        order = _locked(session, order_id)
        answers.store(session, order_id, called.heard)
        after = record_call(session, order, exchange, called, outcome)
    return after_call(outcome, user_id, after)


@dataclass(frozen=True)
class AfterCall:
    """What follows a recorded answer once committed: the fills still to fetch, the after-fill callbacks."""

    order_id: int
    missing_fills: bool
    ended: bool
    source: str
    broker_id: int
    symbol: str


def record_call(session: Session, order: Order, exchange: Exchange, called: VenueCall, outcome: Outcome) -> AfterCall:
    """Record the venue's answer to the placement of `order` (locked) in the caller's transaction (the raw
    answers heard are the caller's to store: answers.store)."""
    return record_calls(session, [(order, exchange, called, outcome)])[0]


def record_calls(session: Session, calls: list[tuple[Order, Exchange, VenueCall, Outcome]]) -> list[AfterCall]:
    """record_call for several orders (locked), their fills stored in one statement."""
    for order, _, called, outcome in calls:
        _record_answer(order, called, outcome)
    fills = record_answer_fills(session, [(order, called.answer) for order, _, called, _ in calls])
    afters = []
    for (order, exchange, called, outcome), answer_fills in zip(calls, fills, strict=True):
        error = str(called.failure)[:300] if called.failure and not called.answer else None
        context = {"order_id": order.id, "state": order.state, "venue": exchange.venue, "fills": answer_fills.added}
        log.info("order_placed" if called.answer else "order_not_placed", extra=context | {"error": error})
        outcome.events += answer_fills.events
        missing = order.filled_quantity > 0 and not answer_fills.complete
        afters.append(
            AfterCall(order.id, missing, _ended_filled(order, outcome), order.source, order.broker_id, order.symbol)
        )
    return afters


def _record_answer(order: Order, called: VenueCall, outcome: Outcome) -> None:
    answer, failure = called.answer, called.failure
    if answer is not None:
        _apply(order, view_of(answer), "venue_ack", outcome)
    elif isinstance(failure, REFUSALS):
        _reject(order, failure, outcome, "venue_refused")
    elif isinstance(failure, OrderWindowPassed):
        order.error_kind = failure.kind
        order.error_message = (
            f"not placed: {failure.message} — the venue's request budget stayed spent "
            f"by earlier orders; the signal is too old to act on now"
        )[:2000]
        _move(order, OrderState.EXPIRED, "budget_wait_expired", outcome, {"error": failure.message[:500]})
    elif isinstance(failure, RateLimited):
        _reject(
            order,
            ExchangeError(
                f"{failure.message} — not placed, try again in a moment", venue=failure.venue, code=failure.code
            ),
            outcome,
            "rate_limited",
        )
        order.error_kind = "rate_limited"
    elif failure is not None:
        _mark_unknown(order, failure, outcome, "no_answer")


def after_call(outcome: Outcome, user_id: int, after: AfterCall) -> Outcome:
    """Once the answer is committed: tell the pages, then follow_up."""
    _finish(outcome, user_id)
    follow_up(after)
    return outcome


def follow_up(after: AfterCall) -> None:
    """Have the answer's missing fills fetched, run the after-fill steps."""
    if after.missing_fills and fills_scheduled(after.broker_id, after.symbol):
        return  # record_symbol_fills stores them and runs the after-fill callbacks
    if after.missing_fills:
        record_order_fills(after.order_id)
    if after.ended:
        after_final_fill(after.order_id, after.source)


# ---- sync ----------------------------------------------------------------------------------------


def _age(order: Order) -> timedelta:
    stamp = order.updated_at or order.created_at
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return datetime.now(UTC) - stamp


def sync(order_id: int, *, resend_after: timedelta = RESEND_AFTER, resend_until: timedelta = RESEND_UNTIL) -> Outcome:
    """Ask the venue about the order by its client order id and record what it says.

    An `unknown`/`sent` order the venue does not have is re-sent with the same id once it is older
    than `resend_after` (no attempt can still be in flight), or rejected once older than `resend_until`.
    Emulated OCOs are settled here: a filled leg cancels the other.
    """
    with session_scope() as session:
        order = session.get(Order, order_id)
        if order is None:
            raise LookupError(f"no order {order_id}")
        outcome = Outcome(order.id, order.state)
        if order.is_final or order.state == OrderState.NEW.value:
            outcome.message = f"nothing to sync ({order.state})"
            return outcome
        exchange = exchange_for(session.get_one(BrokerConnection, order.broker_id))
        user_id = order.user_id
        with listen("query") as heard:
            try:
                answer = lookup(exchange, order)
            except OrderNotFound:
                answer = None
            except ExchangeError as err:
                outcome.message = f"venue not reachable for sync: {err}"
                answers.store(session, order_id, heard)
                return outcome
            if isinstance(answer, OcoResult) and len(answer.orders) < 2:
                answer = _complete_oco(exchange, order, answer, resend_after)
            if answer is not None and isinstance(answer, OcoResult) and answer.emulated and not order.is_final:
                try:
                    with listen("cancel"):
                        answer = exchange.settle_emulated_oco(answer)
                except ExchangeError as err:
                    log.warning("oco_settle_failed", extra={"order_id": order.id, "error": str(err)})
    with session_scope() as session:
        order = _locked(session, order_id)
        answers.store(session, order_id, heard)
        if answer is not None:
            _apply(order, view_of(answer), "sync", outcome)
            filled = order.filled_quantity > 0
            request = None
        else:
            filled, request = False, _not_found(order, outcome, resend_after, resend_until)
        deadline = useful_life_end(session, order) if request is not None else None
        ended, source = _ended_filled(order, outcome), order.source
    _finish(outcome, user_id)
    outcome.events = []
    if request is not None:
        return _send(order_id, exchange, request, outcome, user_id, deadline)
    if filled:
        record_order_fills(order_id)
    if ended:
        after_final_fill(order_id, source)
    return outcome


def _complete_oco(exchange: Exchange, order: Order, found: OcoResult, resend_after: timedelta) -> OcoResult:
    """An emulated OCO with one leg at the venue (the other's placement was lost). A traded leg ends it;
    otherwise the missing leg is placed beside the one resting (never the OCO again from scratch), once
    no earlier attempt can still be in flight."""
    if any(leg.filled_qty > 0 for leg in found.orders) or _age(order) < resend_after:
        return found
    try:
        with priority(RequestClass.ORDER), listen("place"):
            return exchange.place_oco(oco_request_of(order))  # keeps the resting leg (same client id)
    except ExchangeError as err:
        log.warning("oco_leg_not_placed", extra={"order_id": order.id, "error": str(err)[:300]})
        return found


def _not_found(
    order: Order, outcome: Outcome, resend_after: timedelta, resend_until: timedelta
) -> OrderRequest | OcoRequest | None:
    """The venue does not have the order. Re-send it (same id) when that is provably safe."""
    if order.state not in WAITING_STATES:
        outcome.message = "the venue no longer reports this order"
        log.warning("order_missing_at_venue", extra={"order_id": order.id, "state": order.state})
        return None
    age = _age(order)
    if age < resend_after:
        outcome.message = "not at the venue yet; an attempt may still be in flight"
        return None
    if order.state == OrderState.SENT.value:
        _move(order, OrderState.UNKNOWN, "not_found_at_venue", outcome)
    if age > resend_until:
        order.error_kind = "not_placed"
        order.error_message = (
            f"the venue never received this order and it is {int(age.total_seconds() // 60)} "
            f"minutes old; not re-sent because the market may have moved"
        )
        _move(order, OrderState.REJECTED, "stale_not_placed", outcome)
        return None
    _move(order, OrderState.SENT, "resend_same_client_id", outcome)
    return request_of(order)


# ---- cancel --------------------------------------------------------------------------------------


def cancel(order_id: int) -> Outcome:
    """Cancel at the venue (or locally if never sent). A filled order stays filled: the venue decides."""
    with session_scope() as session:
        order = _locked(session, order_id)
        outcome = Outcome(order.id, order.state)
        user_id = order.user_id
        if order.is_final:
            outcome.message = f"already {order.state}"
            return outcome
        if order.state == OrderState.NEW.value:
            _move(order, OrderState.CANCELLED, "cancelled_before_sending", outcome)
            return _finish(outcome, user_id)
        exchange = exchange_for(session.get_one(BrokerConnection, order.broker_id))
        symbol, client_id, is_oco = order.symbol, order.client_order_id or "", order.type == "oco"
        venue_id = None if client_id else order.venue_order_id  # an external order has only the venue's id
    mark_cancel_requested(order_id)  # reconciliation must not take our own cancel for one made at the venue
    failed = False
    with listen("cancel") as heard:
        try:
            with priority(RequestClass.ORDER, deadline=time.time() + manual_wait_s()):
                for leg in oco_leg_ids(client_id) if is_oco else (client_id,):
                    try:
                        exchange.cancel_order(symbol, venue_order_id=venue_id, client_order_id=leg or None)
                    except OrderNotFound:
                        if not is_oco:
                            raise
        except OrderNotFound:
            outcome.message = "the venue has no open order to cancel (it may have filled)"
        except ExchangeError as err:
            outcome.message, failed = f"cancel failed: {err}", True
            log.warning("order_cancel_failed", extra={"order_id": order_id, "error": str(err)})
    with session_scope() as session:
        answers.store(session, order_id, heard)
    if failed:
        return outcome
    # The venue's own report (cancelled, or filled meanwhile) decides our state.
    result = sync(order_id)
    result.message = result.message if outcome.message is None else outcome.message
    return result
