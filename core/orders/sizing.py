"""Turn what a trader types (a quantity, an amount of quote currency, a % of the free balance) into a
base quantity on the symbol's step grid. Rounds down: never more than asked, never more than owned."""

from __future__ import annotations

from decimal import Decimal

from core.exchanges.errors import InvalidOrder
from core.exchanges.models import SymbolRules
from core.exchanges.rules import decimal_str, round_to_step

HUNDRED = Decimal(100)


def _positive(value: Decimal, what: str) -> None:
    if not value.is_finite() or value <= 0:
        raise InvalidOrder(f"{what} must be a positive number, got {value}")


def quantity_from_quote(quote_amount: Decimal, price: Decimal, rules: SymbolRules) -> Decimal:
    """How much base `quote_amount` buys (or sells for) at `price`, rounded down to the step."""
    _positive(quote_amount, f"amount in {rules.quote}")
    _positive(price, "price")
    quantity = round_to_step(quote_amount / price, rules.step_size)
    if quantity <= 0:
        raise InvalidOrder(
            f"{decimal_str(quote_amount)} {rules.quote} is less than one step "
            f"({decimal_str(rules.step_size)} {rules.base}) of {rules.symbol}"
        )
    return quantity


def quantity_from_percent(
    percent: Decimal, side: str, free_base: Decimal, free_quote: Decimal, price: Decimal, rules: SymbolRules
) -> Decimal:
    """`percent` of the free balance: of the quote asset when buying, of the base asset when selling."""
    if not percent.is_finite() or not 0 < percent <= HUNDRED:
        raise InvalidOrder(f"percentage must be above 0 and at most 100, got {percent}")
    if side == "buy":
        if free_quote <= 0:
            raise InvalidOrder(f"no free {rules.quote} to buy {rules.base} with")
        return quantity_from_quote(free_quote * percent / HUNDRED, price, rules)
    if free_base <= 0:
        raise InvalidOrder(f"no free {rules.base} to sell")
    quantity = round_to_step(free_base * percent / HUNDRED, rules.step_size)
    if quantity <= 0:
        raise InvalidOrder(
            f"{percent}% of {decimal_str(free_base)} {rules.base} is less than one step "
            f"({decimal_str(rules.step_size)})"
        )
    return quantity
