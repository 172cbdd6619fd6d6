"""The manual order ticket: check what the trader typed against the symbol's stored rules, size it,
and record the order (state `new`). Sending is the pipeline's job (workers.orders.place_order)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from core.brokers import symbol_rules
from core.exchanges.errors import InvalidOrder
from core.exchanges.models import Balance, OcoRequest, OrderRequest, SymbolRules
from core.exchanges.rules import decimal_str, round_and_validate
from core.models import BrokerConnection, Order
from core.orders.sizing import quantity_from_percent, quantity_from_quote
from core.orders.submit import OrderIntent, record_order

TICKET_TYPES = {
    "market": "market",
    "limit": "limit",
    "stop_loss": "stop_loss",
    "take_profit": "take_profit",
    "oco": "oco",
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
    stop_price: Decimal | None = None


@dataclass(frozen=True)
class Checked:
    """A ticket that passed every check: what will be sent, and what it is worth."""

    ticket: Ticket
    rules: SymbolRules
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    notional: Decimal | None

    def summary(self) -> str:
        what = f"{self.ticket.side.upper()} {decimal_str(self.quantity)} {self.rules.base}"
        kind = self.ticket.type.replace("_", " ")
        price = f" at {decimal_str(self.price)}" if self.price is not None else ""
        stop = f" stop {decimal_str(self.stop_price)}" if self.stop_price is not None else ""
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
    for name, value in (("size", ticket.size), ("price", ticket.price), ("stop price", ticket.stop_price)):
        if value is not None and (not value.is_finite() or value <= 0):
            raise InvalidOrder(f"{name} must be a positive number")
    if ticket.type in PRICED and ticket.price is None:
        raise InvalidOrder(
            "a limit price is required" if ticket.type == "limit" else "an OCO needs its take-profit (limit) price"
        )
    if ticket.type in TRIGGERED and ticket.stop_price is None:
        raise InvalidOrder("a stop price is required")
    reference = ticket.price or ticket.stop_price
    if reference is None or ticket.type == "market":
        reference = last_price(symbol) if last_price else None
    if ticket.type in TRIGGERED and last_price is not None:
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
        request = round_and_validate(
            OrderRequest(
                client_order_id=client_id,
                symbol=symbol,
                side=ticket.side,  # type: ignore[arg-type]  # Ticket's side/type/prices: checked above
                type=ticket.type,  # type: ignore[arg-type]  # Ticket's side/type/prices: checked above
                quantity=quantity,
                price=ticket.price if ticket.type == "limit" else None,
                stop_price=ticket.stop_price if ticket.type in TRIGGERED else None,
            ),
            rules,
            reference_price=reference,
        )
        rounded_qty, price, stop = request.quantity, request.price, request.stop_price
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
    target = {"oco": ticket.price, "take_profit": ticket.stop_price}.get(ticket.type)
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


def record_ticket(session: Session, user_id: int, checked: Checked) -> Order:
    """Record the checked order in state `new` (the caller commits, then enqueues placement)."""
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
    )
    return record_order(session, user_id, intent)
