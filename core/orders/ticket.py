"""The manual order ticket: check what the trader typed against the symbol's stored rules, size it,
and record the order (state `new`). Sending is the pipeline's job (workers.orders.place_order)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy.orm import Session

from core.brokers import symbol_rules
from core.exchanges.errors import InvalidOrder
from core.exchanges.models import TRAIL_PCT_RANGE, Balance, OcoRequest, OrderRequest, SymbolRules
from core.exchanges.rules import decimal_str, round_and_validate, round_to_step
from core.models import BrokerConnection, Order
from core.orders import ladder
from core.orders.sizing import quantity_from_percent, quantity_from_quote
from core.orders.submit import OrderIntent, record_order

TICKET_TYPES = {
    "market": "market",
    "limit": "limit",
    "stop_loss": "stop_loss",
    "take_profit": "take_profit",
    "oco": "oco",
    "trailing_stop": "trailing_stop",
    "tp_ladder": "tp_ladder",  # several orders: one per rung (core/orders/ladder.py)
}
SIZE_MODES = ("quantity", "quote", "percent")
PRICED = frozenset({"limit", "oco"})
TRIGGERED = frozenset({"stop_loss", "take_profit", "oco"})


@dataclass(frozen=True)
class Ticket:
    broker_id: int
    symbol: str
    side: str
    type: str
    size_mode: str
    size: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None  # a trailing stop's activation price; a ladder's stop
    trail_pct: Decimal | None = None
    ladder: str = ""  # the rungs as typed: "+2%:50, +4%:50"


@dataclass(frozen=True)
class Checked:
    """A ticket that passed every check: what will be sent, and what it is worth."""

    ticket: Ticket
    rules: SymbolRules
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    notional: Decimal | None
    rungs: tuple[ladder.Rung, ...] = ()

    def summary(self) -> str:
        what = f"{self.ticket.side.upper()} {decimal_str(self.quantity)} {self.rules.base}"
        kind = self.ticket.type.replace("_", " ")
        price = f" at {decimal_str(self.price)}" if self.price is not None else ""
        stop = f" stop {decimal_str(self.stop_price)}" if self.stop_price is not None else ""
        if self.ticket.type == "trailing_stop":
            kind = f"trailing stop {decimal_str(self.ticket.trail_pct or Decimal(0))} %"
            if "trailing_stop" not in self.rules.order_types:
                kind += " (watched by Aristobot: this venue has no trailing stop)"
            stop = f" activating at {decimal_str(self.stop_price)}" if self.stop_price is not None else ""
        if self.rungs:
            kind = "take-profit ladder: " + ", ".join(
                f"{decimal_str(r.quantity)} at {decimal_str(r.price)}" for r in self.rungs
            )
        value = (
            f" ≈ {decimal_str(self.notional.quantize(Decimal('0.01')))} {self.rules.quote}"
            if self.notional is not None
            else ""
        )
        return f"{what} {kind}{price}{stop}{value}"


def check_ticket(
    session: Session,
    user_id: int,
    ticket: Ticket,
    *,
    last_price: Callable[[str], Decimal | None] | None = None,
    balances: Callable[[], dict[str, Balance]] | None = None,
) -> Checked:
    """Raise InvalidOrder (with a message for the trader) or return the sized, rounded order.

    `last_price` and `balances` are asked only when needed (market orders, quote amount, %, funds check).
    """
    broker = session.get(BrokerConnection, ticket.broker_id)
    if broker is None or broker.user_id != user_id:
        raise InvalidOrder("choose one of your broker connections")
    if ticket.side not in ("buy", "sell"):
        raise InvalidOrder("side must be buy or sell")
    if ticket.type not in TICKET_TYPES:
        raise InvalidOrder(f"order type must be one of {', '.join(TICKET_TYPES)}")
    if ticket.size_mode not in SIZE_MODES:
        raise InvalidOrder("size must be a quantity, an amount of quote currency or a % of balance")
    symbol = ticket.symbol.strip().upper()
    rules = symbol_rules(session, broker.id, symbol)
    if rules is None:
        raise InvalidOrder(
            f"unknown symbol {symbol or '(empty)'} on {broker.label} "
            f"(use “Load markets” on the Brokers page if it is new)"
        )
    for name, value in (
        ("size", ticket.size),
        ("price", ticket.price),
        ("stop price", ticket.stop_price),
        ("trail", ticket.trail_pct),
    ):
        if value is not None and (not value.is_finite() or value <= 0):
            raise InvalidOrder(f"{name} must be a positive number")
    if ticket.type in PRICED and ticket.price is None:
        raise InvalidOrder(
            "a limit price is required" if ticket.type == "limit" else "an OCO needs its take-profit (limit) price"
        )
    if ticket.type in TRIGGERED and ticket.stop_price is None:
        raise InvalidOrder("a stop price is required")
    if ticket.type == "tp_ladder":
        return _check_ladder(ticket, symbol, rules, last_price, balances)
    if ticket.type == "trailing_stop":
        _check_trail(ticket, rules)
    elif ticket.trail_pct is not None:
        raise InvalidOrder("a trail is only for a trailing stop")
    reference = ticket.price or ticket.stop_price
    if reference is None or ticket.type in ("market", "trailing_stop"):
        reference = last_price(symbol) if last_price else None
    if ticket.type in TRIGGERED | {"trailing_stop"} and last_price is not None:
        _check_triggers(ticket, symbol, last_price(symbol))
    quantity = _quantity(ticket, rules, reference, balances)
    client_id = "ab-check"
    if ticket.type == "oco":
        oco = OcoRequest(
            client_order_id=client_id,
            symbol=symbol,
            side=ticket.side,  # type: ignore[arg-type]  # Ticket's side/type/prices: checked above
            quantity=quantity,
            limit_price=ticket.price,  # type: ignore[arg-type]  # Ticket's side/type/prices: checked above
            stop_price=ticket.stop_price,  # type: ignore[arg-type]  # Ticket's side/type/prices: checked above
        )
        tp = round_and_validate(oco.take_profit_leg(), rules)
        sl = round_and_validate(oco.stop_loss_leg(), rules)
        rounded_qty, price, stop = tp.quantity, tp.price, sl.stop_price
    else:
        # A trailing stop the venue does not run is watched by Aristobot, then sent as a market order.
        emulated = ticket.type == "trailing_stop" and "trailing_stop" not in rules.order_types
        request = round_and_validate(
            OrderRequest(
                client_order_id=client_id,
                symbol=symbol,
                side=ticket.side,  # type: ignore[arg-type]  # Ticket's side/type/prices: checked above
                type="market" if emulated else ticket.type,  # type: ignore[arg-type]  # checked above
                quantity=quantity,
                price=ticket.price if ticket.type == "limit" else None,
                stop_price=ticket.stop_price if ticket.type in TRIGGERED | {"trailing_stop"} and not emulated else None,
                trail_pct=ticket.trail_pct if ticket.type == "trailing_stop" and not emulated else None,
            ),
            rules,
            reference_price=reference,
        )
        rounded_qty, price, stop = request.quantity, request.price, request.stop_price
        if emulated and ticket.stop_price is not None:
            stop = round_to_step(ticket.stop_price, rules.tick_size, ROUND_HALF_EVEN)
    assert rounded_qty is not None
    basis = price or stop or reference
    notional = rounded_qty * basis if basis else None
    checked = Checked(
        ticket=Ticket(**{**ticket.__dict__, "symbol": symbol}),
        rules=rules,
        quantity=rounded_qty,
        price=price,
        stop_price=stop,
        notional=notional,
    )
    if balances is not None:
        _check_funds(checked, balances())
    return checked


def _check_triggers(ticket: Ticket, symbol: str, last: Decimal | None) -> None:
    """A stop or target the market has already passed would trigger at once: the venue refuses it
    ("Order would trigger immediately"), so the ticket says so first, with the side it must be on."""
    if last is None:
        return
    stop = ticket.stop_price if ticket.type in ("stop_loss", "oco") else None
    # A trailing stop's activation price is a target: it starts trailing once the market gets there.
    target = {"oco": ticket.price, "take_profit": ticket.stop_price, "trailing_stop": ticket.stop_price}.get(
        ticket.type
    )
    # For a sell the stop rests below the market and the target above it; for a buy, the other way round.
    sell = ticket.side == "sell"
    for what, price, must_be in (
        ("stop", stop, "below" if sell else "above"),
        ("take-profit", target, "above" if sell else "below"),
    ):
        if price is None or (price < last if must_be == "below" else price > last):
            continue
        raise InvalidOrder(
            f"a {ticket.side} {what} at {decimal_str(price)} would trigger at once: {symbol} last traded at "
            f"{decimal_str(last)}, and a {ticket.side} {what} must be {must_be} it"
        )


def _check_trail(ticket: Ticket, rules: SymbolRules) -> None:
    if ticket.trail_pct is None:
        raise InvalidOrder("a trailing stop needs its trail, in % (e.g. 2)")
    low, high = TRAIL_PCT_RANGE
    if not ticket.trail_pct.is_finite() or not low <= ticket.trail_pct <= high:
        raise InvalidOrder(
            f"the trail must be between {decimal_str(low)} % and {decimal_str(high)} % (the range Binance accepts)"
        )
    if ticket.price is not None:
        raise InvalidOrder("a trailing stop sells (buys) at market when it triggers: leave the limit price empty")


def _check_ladder(
    ticket: Ticket,
    symbol: str,
    rules: SymbolRules,
    last_price: Callable[[str], Decimal | None] | None,
    balances: Callable[[], dict[str, Balance]] | None,
) -> Checked:
    """A take-profit ladder: the rungs sized and priced (see core/orders/ladder.py), an optional stop
    making each rung an OCO; the whole quantity is checked against the funds."""
    if ticket.price is not None:
        raise InvalidOrder("a ladder's targets are its rungs: leave the limit price empty")
    if ticket.trail_pct is not None:
        raise InvalidOrder("a ladder takes a fixed stop, not a trail")
    targets = ladder.targets_from_text(ticket.ladder)
    last = last_price(symbol) if last_price else None
    if ticket.stop_price is not None and last is not None:
        _check_triggers(Ticket(**{**ticket.__dict__, "type": "stop_loss"}), symbol, last)
    if ticket.stop_price is not None and not rules.oco_allowed and "stop_loss" not in rules.order_types:
        raise InvalidOrder(f"{symbol} takes no stop orders at this venue")
    quantity = round_to_step(_quantity(ticket, rules, last, balances), rules.step_size)
    rungs = ladder.size_rungs(targets, quantity, ticket.side, last, rules)
    stop = round_to_step(ticket.stop_price, rules.tick_size, ROUND_HALF_EVEN) if ticket.stop_price else None
    checked = Checked(
        ticket=Ticket(**{**ticket.__dict__, "symbol": symbol}),
        rules=rules,
        quantity=quantity,
        price=None,
        stop_price=stop,
        notional=sum((r.quantity * r.price for r in rungs), Decimal(0)),
        rungs=rungs,
    )
    if balances is not None:
        _check_funds(checked, balances())
    return checked


def _quantity(
    ticket: Ticket, rules: SymbolRules, reference: Decimal | None, balances: Callable[[], dict[str, Balance]] | None
) -> Decimal:
    if ticket.size_mode == "quantity":
        return ticket.size
    if reference is None:
        raise InvalidOrder(f"no current price for {rules.symbol}; give the quantity instead")
    if ticket.size_mode == "quote":
        return quantity_from_quote(ticket.size, reference, rules)
    if balances is None:
        raise InvalidOrder("balances are not available; give the quantity instead")
    held = balances()
    free = {asset: held[asset].free if asset in held else Decimal(0) for asset in (rules.base, rules.quote)}
    return quantity_from_percent(ticket.size, ticket.side, free[rules.base], free[rules.quote], reference, rules)


def _check_funds(checked: Checked, held: dict[str, Balance]) -> None:
    rules = checked.rules
    if checked.ticket.side == "buy":
        need, asset = checked.notional, rules.quote
    else:
        need, asset = checked.quantity, rules.base
    if need is None:
        return
    free = held[asset].free if asset in held else Decimal(0)
    if need > free:
        raise InvalidOrder(f"insufficient balance: needs {decimal_str(need)} {asset}, {decimal_str(free)} {asset} free")


def record_ticket(session: Session, user_id: int, checked: Checked) -> list[Order]:
    """Record the checked order in state `new` (the caller commits, then enqueues placement): one order,
    or one per rung of a ladder, linked by their ladder group."""
    ticket = checked.ticket
    intent = OrderIntent(
        broker_id=ticket.broker_id,
        symbol=ticket.symbol,
        side=ticket.side,
        type=TICKET_TYPES[ticket.type],
        quantity=checked.quantity,
        price=checked.price,
        stop_price=checked.stop_price,
        source="manual",
        trail_pct=ticket.trail_pct if ticket.type == "trailing_stop" else None,
    )
    if not checked.rungs:
        return [record_order(session, user_id, intent)]
    intents = ladder.rung_intents(intent, checked.rungs, checked.stop_price, ladder.new_group())
    return [record_order(session, user_id, rung) for rung in intents]
