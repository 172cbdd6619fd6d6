"""What the spot matching engine trades in: sides, order types, accounts, orders, fills, refusals.

Venue-neutral: protocol faces translate these to and from their venue's wire format.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)
FEE_RATE = Decimal("0.001")
COMMISSION_UNIT = Decimal("0.00000001")


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"
    STOP_LOSS = "STOP_LOSS"
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class Status(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"


OPEN_STATUSES = (Status.NEW, Status.PARTIALLY_FILLED)
TRAILING_DELTA_RANGE = (10, 2000)  # basis points: the TRAILING_DELTA filter's bounds on Binance
STOP_TYPES = (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT)
LIMIT_PRICED = (OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)


class EngineError(Exception):
    """A refusal. `reason` is one of the constants below; faces map it to their venue's codes."""

    UNKNOWN_SYMBOL = "unknown_symbol"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    DUPLICATE_ORDER = "duplicate_order"
    UNKNOWN_ORDER = "unknown_order"
    FILTER = "filter"
    WOULD_TRIGGER = "would_trigger"
    WOULD_TAKE = "would_take"
    INVALID = "invalid"

    def __init__(self, reason: str, message: str, *, detail: str = ""):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.detail = detail  # e.g. the failing filter name


@dataclass(frozen=True)
class Instrument:
    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")


@dataclass
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass
class Account:
    account_id: str
    balances: dict[str, Balance] = field(default_factory=dict)

    def balance(self, asset: str) -> Balance:
        return self.balances.setdefault(asset, Balance())


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal | None = None
    quote_quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    client_order_id: str | None = None
    trailing_delta: int | None = None  # basis points (Binance trailingDelta); see sim/spot/trailing.py


@dataclass
class Fill:
    trade_id: int
    order_id: int
    account_id: str
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_maker: bool
    order_list_id: int = -1

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty


@dataclass
class Order:
    order_id: int
    account_id: str
    symbol: str
    side: Side
    type: OrderType
    client_order_id: str
    quantity: Decimal
    quote_quantity: Decimal
    price: Decimal
    stop_price: Decimal
    time_in_force: TimeInForce | None
    time: int
    update_time: int
    status: Status = Status.NEW
    executed_qty: Decimal = ZERO
    cumulative_quote: Decimal = ZERO
    lock_asset: str = ""
    locked: Decimal = ZERO
    triggered: bool = False  # stops: whether the trigger fired (Binance "isWorking")
    working_time: int = -1
    order_list_id: int = -1
    fills: list[Fill] = field(default_factory=list)
    trailing_delta: int = 0  # basis points; 0: not a trailing order
    trail_active: bool = False
    trail_extreme: Decimal = ZERO  # the best trade price since the trail activated
    trailing_time: int = -1

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed_qty


@dataclass
class OrderList:
    order_list_id: int
    account_id: str
    symbol: str
    list_client_order_id: str
    order_ids: list[int]
    time: int
    status: str = "EXECUTING"  # EXECUTING / ALL_DONE / REJECT (Binance listOrderStatus vocabulary)
    update_time: int = 0


@dataclass(frozen=True)
class OcoLeg:
    type: OrderType
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    client_order_id: str | None = None


_ID_ALPHABET = string.ascii_letters + string.digits


def new_client_order_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))
