"""Take-profit ladders: several partial targets for one position, as linked orders.

A ladder is 2 to 10 rungs, each a target (a price, or a distance in % from a reference price towards
profit) and a share of the position (`size_pct`, adding up to exactly 100). The quantities are rounded down
to the symbol's step, the remainder going to the last rung, so they always add up to the position; a rung
the venue would refuse (below its minimum quantity or notional) refuses the whole ladder with the reason.

Each rung is its own order, linked by `Order.ladder_group`. Without a stop a rung is a limit order resting at
its target. With a stop, each rung is an OCO of its target and the stop for that rung's quantity: the stop
protecting the position is the sum of the rungs' stop legs, so it shrinks by exactly a rung's quantity when
that rung fills (its stop leg is cancelled with it, natively or by our emulated OCO), and a stop that fires
closes what is left, rung by rung. Nothing needs to be cancelled and placed again as rungs fill.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from core.exchanges.errors import InvalidOrder
from core.exchanges.models import SymbolRules
from core.exchanges.rules import decimal_str, round_to_step
from core.orders.submit import OrderIntent

MIN_RUNGS, MAX_RUNGS = 2, 10
HUNDRED = Decimal(100)
LADDER_PREFIX = "ladder:"


@dataclass(frozen=True)
class Target:
    """One rung as asked: its share of the position and where it takes profit."""

    size_pct: Decimal
    price: Decimal | None = None
    pct: Decimal | None = None  # distance from the reference price, in %, towards profit


@dataclass(frozen=True)
class Rung:
    """One rung sized and priced on the symbol's grid."""

    quantity: Decimal
    price: Decimal


def new_group() -> str:
    return f"{LADDER_PREFIX}{secrets.token_hex(8)}"


def _number(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise InvalidOrder(f"{what} must be a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidOrder(f"{what} must be a number, got {str(value)[:20]!r}") from None
    if not number.is_finite() or number <= 0:
        raise InvalidOrder(f"{what} must be a positive number")
    return number


def checked_targets(targets: Iterable[Target]) -> tuple[Target, ...]:
    rungs = tuple(targets)
    if not MIN_RUNGS <= len(rungs) <= MAX_RUNGS:
        raise InvalidOrder(f"a take-profit ladder has {MIN_RUNGS} to {MAX_RUNGS} rungs, not {len(rungs)}")
    total = sum((t.size_pct for t in rungs), Decimal(0))
    if total != HUNDRED:
        raise InvalidOrder(f"the rungs' sizes add up to {decimal_str(total)} %; they must add up to exactly 100 %")
    return rungs


def targets_from_json(value: object) -> tuple[Target, ...]:
    """`[{"price": 64000, "size_pct": 50}, {"pct": 4, "size_pct": 50}]` (a webhook's `take_profit_ladder`)."""
    if not isinstance(value, list):
        raise InvalidOrder('take_profit_ladder must be a list of rungs like {"pct": 2, "size_pct": 50}')
    targets = []
    for number, rung in enumerate(value, 1):
        if not isinstance(rung, Mapping):
            raise InvalidOrder(f'rung {number} must be an object like {{"pct": 2, "size_pct": 50}}')
        unknown = sorted(set(rung) - {"price", "pct", "size_pct"})
        if unknown:
            raise InvalidOrder(f"rung {number} has unknown fields: {', '.join(map(str, unknown))[:80]}")
        if ("price" in rung) == ("pct" in rung):
            raise InvalidOrder(f'rung {number} needs exactly one of "price" or "pct"')
        if "size_pct" not in rung:
            raise InvalidOrder(f'rung {number} needs its "size_pct" (its share of the position, in %)')
        targets.append(
            Target(
                size_pct=_number(rung["size_pct"], f"rung {number} size_pct"),
                price=_number(rung["price"], f"rung {number} price") if "price" in rung else None,
                pct=_number(rung["pct"], f"rung {number} pct") if "pct" in rung else None,
            )
        )
    return checked_targets(targets)


def targets_from_text(text: str) -> tuple[Target, ...]:
    """The ticket's form: `+2%:50, +4%:50` (distance from the last price) or `64000:50, 66000:50` (prices)."""
    parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if not parts:
        raise InvalidOrder("give the ladder's rungs as target:size%, e.g. +2%:50, +4%:50")
    targets = []
    for number, part in enumerate(parts, 1):
        target, sep, size = part.partition(":")
        if not sep:
            raise InvalidOrder(f"rung {number} {part[:20]!r} must be target:size%, e.g. +2%:50")
        target, size = target.strip(), size.strip().removesuffix("%")
        relative = target.endswith("%")
        value = _number(target.removeprefix("+").removesuffix("%"), f"rung {number} target")
        targets.append(
            Target(
                size_pct=_number(size, f"rung {number} size"),
                price=None if relative else value,
                pct=value if relative else None,
            )
        )
    return checked_targets(targets)


def size_rungs(
    targets: tuple[Target, ...], quantity: Decimal, side: str, reference: Decimal | None, rules: SymbolRules
) -> tuple[Rung, ...]:
    """Prices and quantities of the rungs of an exit on `side` (sell: out of a long) for `quantity`."""
    total = round_to_step(quantity, rules.step_size)
    sell = side == "sell"
    rungs: list[Rung] = []
    for number, target in enumerate(targets, 1):
        if target.price is not None:
            price = target.price
        elif reference is None:
            raise InvalidOrder(f"no current price for {rules.symbol}: give rung {number} as a price")
        else:
            assert target.pct is not None  # a Target has its price or its pct (targets_from_*)
            price = reference * (1 + target.pct / HUNDRED if sell else 1 - target.pct / HUNDRED)
        price = round_to_step(price, rules.tick_size, ROUND_HALF_EVEN)
        if price <= 0:
            raise InvalidOrder(f"rung {number}'s target is not a price above 0")
        if reference is not None and (price <= reference if sell else price >= reference):
            raise InvalidOrder(
                f"rung {number}'s target {decimal_str(price)} is not {'above' if sell else 'below'} the "
                f"{'entry' if target.pct is None else 'reference'} price {decimal_str(reference)}: a {side} "
                f"take-profit must be {'above' if sell else 'below'} it"
            )
        share = total - sum((r.quantity for r in rungs), Decimal(0)) if number == len(targets) else None
        rung_qty = share if share is not None else round_to_step(total * target.size_pct / HUNDRED, rules.step_size)
        notional = rung_qty * price
        if rung_qty < max(rules.min_qty, rules.step_size) or notional < rules.min_notional:
            raise InvalidOrder(
                f"rung {number} ({decimal_str(target.size_pct)} % = {decimal_str(rung_qty)} {rules.base} at "
                f"{decimal_str(price)}) is worth {decimal_str(notional.quantize(Decimal('0.01')))} {rules.quote}, "
                f"below the {rules.symbol} minimum of {decimal_str(rules.min_notional)} {rules.quote} "
                f"(minimum quantity {decimal_str(rules.min_qty)}): use fewer rungs or a larger size"
            )
        rungs.append(Rung(rung_qty, price))
    return tuple(rungs)


def rung_intents(
    base: OrderIntent, rungs: tuple[Rung, ...], stop_price: Decimal | None, group: str
) -> list[OrderIntent]:
    """One order per rung: a limit at its target, or with a stop an OCO of its target and the stop."""
    kind = "oco" if stop_price is not None else "limit"
    return [
        replace(base, type=kind, quantity=rung.quantity, price=rung.price, stop_price=stop_price, ladder_group=group)
        for rung in rungs
    ]
