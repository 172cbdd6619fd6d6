"""Boundary types of the exchange gateway: what every adapter accepts and returns.

Prices and quantities are Decimal everywhere; a float never reaches an order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, get_args

from core.exchanges.errors import InvalidOrder

Side = Literal["buy", "sell"]
OrderType = Literal[
    "market", "limit", "stop_loss", "take_profit", "stop_loss_limit", "take_profit_limit", "trailing_stop"
]
OrderStatus = Literal["open", "partially_filled", "filled", "cancelled", "rejected", "expired"]
TimeInForce = Literal["GTC", "IOC", "FOK"]

ORDER_TYPES: frozenset[str] = frozenset(get_args(OrderType))
LIMIT_PRICED_TYPES = frozenset({"limit", "stop_loss_limit", "take_profit_limit"})
TRIGGERED_TYPES = frozenset({"stop_loss", "take_profit", "stop_loss_limit", "take_profit_limit"})
FINAL_STATUSES = frozenset({"filled", "cancelled", "rejected", "expired"})
# A trailing stop trails the best price since it activated by `trail_pct` % and sells (buys) at market once
# the price falls (rises) that far from it; its optional `stop_price` is the activation price.
MAX_TRAIL_PCT = Decimal(50)
# The trails our tickets, webhooks and bots accept: what Binance's trailingDelta takes (10..2000 basis points).
TRAIL_PCT_RANGE = (Decimal("0.1"), Decimal(20))


def _require_decimal(name: str, value: object, *, positive: bool = True) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidOrder(f"{name} must be a finite Decimal, got {value!r}")
    if positive and value <= 0:
        raise InvalidOrder(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class SymbolRules:
    """What the venue accepts for one symbol: the grid prices and sizes must sit on, and the minimums."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    order_types: frozenset[str]
    oco_allowed: bool = False
    max_qty: Decimal | None = None
    trading: bool = True


@dataclass(frozen=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True)
class OrderRequest:
    """One order as we want it on the venue. Checked for shape here, against symbol rules in rules.py."""

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal | None = None
    quote_quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = "GTC"
    trail_pct: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.client_order_id:
            raise InvalidOrder("client_order_id is required (derive it with client_order_id_for)")
        if not self.symbol:
            raise InvalidOrder("symbol is required")
        if self.side not in ("buy", "sell"):
            raise InvalidOrder(f"side must be 'buy' or 'sell', got {self.side!r}")
        if self.type not in ORDER_TYPES:
            raise InvalidOrder(f"unknown order type {self.type!r}; expected one of {sorted(ORDER_TYPES)}")
        if self.time_in_force not in ("GTC", "IOC", "FOK"):
            raise InvalidOrder(f"time_in_force must be GTC, IOC or FOK, got {self.time_in_force!r}")
        for name in ("quantity", "quote_quantity", "price", "stop_price", "trail_pct"):
            _require_decimal(name, getattr(self, name))
        if (self.quantity is None) == (self.quote_quantity is None):
            raise InvalidOrder("give exactly one of quantity or quote_quantity")
        if self.quote_quantity is not None and self.type != "market":
            raise InvalidOrder("quote_quantity is only allowed on market orders")
        if self.type in LIMIT_PRICED_TYPES and self.price is None:
            raise InvalidOrder(f"a {self.type} order needs a price")
        if self.type not in LIMIT_PRICED_TYPES and self.price is not None:
            raise InvalidOrder(f"a {self.type} order takes no limit price")
        if self.type in TRIGGERED_TYPES and self.stop_price is None:
            raise InvalidOrder(f"a {self.type} order needs a stop_price")
        if self.type not in TRIGGERED_TYPES and self.type != "trailing_stop" and self.stop_price is not None:
            raise InvalidOrder(f"a {self.type} order takes no stop_price")
        if self.type == "trailing_stop":
            if self.trail_pct is None or self.trail_pct >= MAX_TRAIL_PCT:
                raise InvalidOrder(f"a trailing stop needs its trail: a % above 0 and below {MAX_TRAIL_PCT}")
            if self.quantity is None:
                raise InvalidOrder("a trailing stop is sized by quantity")
        elif self.trail_pct is not None:
            raise InvalidOrder(f"a {self.type} order takes no trail")


@dataclass(frozen=True)
class OcoRequest:
    """One-cancels-the-other exit: a take-profit limit and a stop-loss on the same quantity.

    For a sell OCO the limit sits above the market and the stop below; for a buy OCO the reverse.
    `stop_limit_price` turns the stop leg into a stop-loss-limit.
    """

    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    limit_price: Decimal
    stop_price: Decimal
    stop_limit_price: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.client_order_id:
            raise InvalidOrder("client_order_id is required")
        if self.side not in ("buy", "sell"):
            raise InvalidOrder(f"side must be 'buy' or 'sell', got {self.side!r}")
        for name in ("quantity", "limit_price", "stop_price", "stop_limit_price"):
            _require_decimal(name, getattr(self, name))
        above, below = (self.limit_price, self.stop_price)
        if self.side == "buy":
            above, below = below, above
        if above <= below:
            where = "limit above the stop" if self.side == "sell" else "stop above the limit"
            raise InvalidOrder(
                f"a {self.side} OCO needs its {where} (limit {self.limit_price}, stop {self.stop_price})"
            )

    def take_profit_leg(self) -> OrderRequest:
        return OrderRequest(
            client_order_id=oco_leg_ids(self.client_order_id)[0],
            symbol=self.symbol,
            side=self.side,
            type="limit",
            quantity=self.quantity,
            price=self.limit_price,
        )

    def stop_loss_leg(self) -> OrderRequest:
        kind: OrderType = "stop_loss_limit" if self.stop_limit_price is not None else "stop_loss"
        return OrderRequest(
            client_order_id=oco_leg_ids(self.client_order_id)[1],
            symbol=self.symbol,
            side=self.side,
            type=kind,
            quantity=self.quantity,
            price=self.stop_limit_price,
            stop_price=self.stop_price,
        )


def oco_leg_ids(client_order_id: str) -> tuple[str, str]:
    """Client ids of the take-profit and stop-loss legs, derived so reconciliation finds both."""
    return f"{client_order_id}-tp", f"{client_order_id}-sl"


@dataclass(frozen=True)
class VenueOrder:
    venue_order_id: str
    client_order_id: str
    symbol: str
    side: Side
    type: str
    status: OrderStatus
    quantity: Decimal | None
    filled_qty: Decimal
    avg_price: Decimal | None
    price: Decimal | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # The trades the venue reported with this answer (Binance's FULL response): when they add up to
    # filled_qty, no trades query is needed to record the fills.
    trades: tuple[VenueTrade, ...] = ()

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class OcoResult:
    """Both legs of an OCO. `emulated` means the venue has no OCO: a filled leg must cancel the other
    (see Exchange.settle_emulated_oco)."""

    client_order_id: str
    symbol: str
    orders: tuple[VenueOrder, ...]
    emulated: bool
    venue_list_id: str | None = None


@dataclass(frozen=True)
class VenueTrade:
    trade_id: str
    order_id: str
    symbol: str
    side: Side | None
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str
    time_ms: int


@dataclass(frozen=True)
class Kline:
    open_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
