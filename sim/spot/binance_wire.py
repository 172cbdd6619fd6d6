"""The Binance spot wire format of the simulator: error codes, request parameters, signatures, serializers.

Same parameter names, field names, error codes and signature rules as the venue, for the subset our
adapter uses (see core/exchanges/spot/binance.py, the client side of the same protocol).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from sim.spot.market import Candle
from sim.spot.orders import STOP_TYPES, EngineError, Order, OrderType, TimeInForce
from sim.spot.state import SimState

EIGHT = Decimal("0.00000001")
CLIENT_ID_PATTERN = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
DECIMAL_PATTERN = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
API_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
WEIGHT_LIMIT_PER_MINUTE = 6000
DEFAULT_RESP_TYPE = {OrderType.MARKET: "FULL", OrderType.LIMIT: "FULL"}
ORDER_TYPES = [t.value for t in OrderType]


class BinanceError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400):
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def fmt(value: Decimal) -> str:
    """Binance's 8-decimal strings ("0.00000000", never "0E-8")."""
    return f"{value.quantize(EIGHT):f}"


def mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


ENGINE_CODES = {
    EngineError.UNKNOWN_SYMBOL: -1121,
    EngineError.INSUFFICIENT_BALANCE: -2010,
    EngineError.DUPLICATE_ORDER: -2010,
    EngineError.WOULD_TRIGGER: -2010,
    EngineError.WOULD_TAKE: -2010,
    EngineError.FILTER: -1013,
    EngineError.UNKNOWN_ORDER: -2013,
    EngineError.INVALID: -1102,
}


def from_engine(error: EngineError, *, cancel: bool = False) -> BinanceError:
    if error.reason == EngineError.UNKNOWN_ORDER and cancel:
        return BinanceError(-2011, "Unknown order sent.")
    if error.reason == EngineError.UNKNOWN_ORDER:
        return BinanceError(-2013, "Order does not exist.")
    return BinanceError(ENGINE_CODES[error.reason], error.message)


@dataclass
class Params:
    values: dict[str, str]

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value in (None, ""):
            if required:
                raise mandatory(name)
            return None
        return value

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        raw = self.text(name, required=required)
        if raw is None:
            return None
        if not DECIMAL_PATTERN.match(raw):
            raise BinanceError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is "
                "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
            )
        try:
            return Decimal(raw)
        except InvalidOperation as exc:  # pragma: no cover - the pattern already guards this
            raise mandatory(name) from exc

    def integer(self, name: str, *, required: bool = False) -> int | None:
        raw = self.text(name, required=required)
        if raw is None:
            return None
        if not re.fullmatch(r"-?[0-9]{1,20}", raw):
            raise BinanceError(
                -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
            )
        return int(raw)

    def symbol(self, state: SimState, *, required: bool = True) -> str | None:
        symbol = self.text("symbol", required=required)
        if symbol is not None and symbol not in state.market.symbols:
            raise BinanceError(-1121, "Invalid symbol.")
        return symbol


def parse_params(raw_query: str, raw_body: str) -> Params:
    values = dict(parse_qsl(raw_body, keep_blank_values=True))
    values.update(parse_qsl(raw_query, keep_blank_values=True))  # the query wins on duplicates
    return Params(values)


def signature_payload(raw_query: str, raw_body: str) -> tuple[str, str | None]:
    """What Binance signs: query then body, as sent, minus the signature parameter; and the signature."""
    signature = None
    kept_parts = []
    for part in (raw_query, raw_body):
        kept = []
        for piece in part.split("&") if part else []:
            if piece.startswith("signature="):
                signature = signature or piece[len("signature=") :]
            else:
                kept.append(piece)
        kept_parts.append("&".join(kept))
    return "".join(kept_parts), signature


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


# --- serializers ---------------------------------------------------------------------------


def levels(rows: list[tuple[Decimal, Decimal]]) -> list[list[str]]:
    return [[fmt(p), fmt(q)] for p, q in rows]


def kline_row(c: Candle) -> list:
    return [
        c.open_time,
        fmt(c.open),
        fmt(c.high),
        fmt(c.low),
        fmt(c.close),
        fmt(c.volume),
        c.close_time,
        fmt(c.quote_volume),
        c.trades,
        fmt(c.taker_buy_volume),
        fmt(c.taker_buy_quote_volume),
        "0",
    ]


def kline_event(c: Candle, event_ms: int) -> dict:
    return {
        "e": "kline",
        "E": event_ms,
        "s": c.symbol,
        "k": {
            "t": c.open_time,
            "T": c.close_time,
            "s": c.symbol,
            "i": c.interval,
            "f": c.first_trade_id,
            "L": c.last_trade_id,
            "o": fmt(c.open),
            "c": fmt(c.close),
            "h": fmt(c.high),
            "l": fmt(c.low),
            "v": fmt(c.volume),
            "n": c.trades,
            "x": c.closed,
            "q": fmt(c.quote_volume),
            "V": fmt(c.taker_buy_volume),
            "Q": fmt(c.taker_buy_quote_volume),
            "B": "0",
        },
    }


def order_fields(order: Order) -> dict:
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "clientOrderId": order.client_order_id,
        "price": fmt(order.price),
        "origQty": fmt(order.quantity),
        "executedQty": fmt(order.executed_qty),
        "origQuoteOrderQty": fmt(order.quote_quantity),
        "cummulativeQuoteQty": fmt(order.cumulative_quote),
        "status": order.status.value,
        "timeInForce": (order.time_in_force or TimeInForce.GTC).value,
        "type": order.type.value,
        "side": order.side.value,
        **({"stopPrice": fmt(order.stop_price)} if order.type in STOP_TYPES else {}),
        **({"trailingDelta": order.trailing_delta} if order.trailing_delta else {}),
        "selfTradePreventionMode": "NONE",
    }


def query_fields(order: Order) -> dict:
    return {
        **order_fields(order),
        "stopPrice": fmt(order.stop_price),
        "icebergQty": "0.00000000",
        "time": order.time,
        "updateTime": order.update_time,
        "isWorking": order.type not in STOP_TYPES or order.triggered,
        "workingTime": order.working_time,
        **({"trailingTime": order.trailing_time} if order.trailing_delta else {}),
    }


def order_response(order: Order, resp_type: str) -> dict:
    ack = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "clientOrderId": order.client_order_id,
        "transactTime": order.time,
    }
    if resp_type == "ACK":
        return ack
    body = {**ack, **order_fields(order), "workingTime": order.working_time}
    if resp_type == "FULL":
        body["fills"] = [
            {
                "price": fmt(f.price),
                "qty": fmt(f.qty),
                "commission": fmt(f.commission),
                "commissionAsset": f.commission_asset,
                "tradeId": f.trade_id,
            }
            for f in order.fills
        ]
    return body
