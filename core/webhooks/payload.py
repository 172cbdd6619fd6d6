"""What a TradingView alert may say, and how its body is read (JSON, or `text/plain` holding JSON)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.exchanges.errors import InvalidOrder
from core.exchanges.models import TRAIL_PCT_RANGE
from core.orders.ladder import Target, targets_from_json

ACTIONS = ("buy", "sell", "close", "cancel")
ACCEPTED_CONTENT_TYPES = ("application/json", "text/plain")
MAX_BODY_BYTES = 8 * 1024  # TradingView caps alert messages at a few KB; anything bigger is not an alert
# Quantities and prices are stored as NUMERIC(38, 18): no real order comes near these bounds, and a value
# beyond them is refused here with a reason instead of reaching the database as an overflow.
MAX_AMOUNT = Decimal(10) ** 15
MAX_DECIMALS = 18
MAX_SYMBOL_LENGTH = 32
MAX_INTERVAL_LENGTH = 16


class AlertRejected(Exception):
    """An alert that must not become an order: the HTTP status to answer and a reason a trader can read."""

    def __init__(self, http_status: int, reason: str) -> None:
        super().__init__(reason)
        self.http_status = http_status
        self.reason = reason


class Alert(BaseModel):
    """A validated alert: what processing needs, nothing more."""

    model_config = ConfigDict(frozen=True)

    action: str
    symbol: str
    quantity: Decimal | None = None  # {{strategy.order.contracts}}: overrides the webhook's default size
    price: Decimal | None = None  # {{close}}: the price the alert saw (for minimum checks only)
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_stop_pct: Decimal | None = None  # a trailing stop instead of a fixed stop-loss
    take_profit_ladder: list[dict[str, str]] | None = None  # rungs {"price"|"pct", "size_pct"}, checked
    interval: str | None = None
    time: datetime | None = None  # {{timenow}}: when TradingView fired the alert

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _placeholder(value: Any) -> bool:
    """TradingView leaves `{{name}}` untouched when the placeholder does not apply to the alert."""
    return isinstance(value, str) and "{{" in value


def _text(body: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = body.get(name)
        if value is None or _placeholder(value):
            continue
        text = str(value).strip()
        if text:
            return text
    return None


def _decimal(body: dict[str, Any], name: str, *aliases: str) -> Decimal | None:
    raw = _text(body, name, *aliases)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise AlertRejected(422, f"'{name}' must be a number, got {raw[:40]!r}") from None
    problem = amount_problem(value)
    if problem:
        raise AlertRejected(422, f"'{name}' {problem}, got {raw[:40]!r}")
    return value


def decimal_places(value: Decimal) -> int:
    """Digits after the point, trailing zeros aside (1.50 has 1), without rounding in a decimal context."""
    _sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"{value} is not a finite number")
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing)) if digits != (0,) else 0


def amount_problem(value: Decimal) -> str | None:
    """Why `value` cannot be a quantity or a price (None: it can): positive, finite and within what an
    order may hold."""
    if not value.is_finite() or value <= 0:
        return "must be a positive number"
    if value > MAX_AMOUNT:
        return f"must be at most {MAX_AMOUNT:,.0f}"
    if decimal_places(value) > MAX_DECIMALS:
        return f"must have at most {MAX_DECIMALS} decimal places"
    return None


def normalize_symbol(raw: str) -> str:
    """`BINANCE:BTCUSDT`, `BTCUSDT.P`, `btc/usdt`, `BTC-USDT` -> `BTCUSDT`."""
    symbol = raw.split(":")[-1].strip().upper()
    symbol = re.sub(r"\.P$", "", symbol)
    return re.sub(r"[/\-_ ]", "", symbol)


def parse_time(raw: str) -> datetime:
    """{{timenow}} is ISO 8601 UTC ("2024-05-01T12:00:00Z"); epoch seconds or ms are accepted too."""
    try:
        if re.fullmatch(r"\d{9,13}", raw):
            number = int(raw)
            return datetime.fromtimestamp(number / 1000 if number > 10**11 else number, UTC)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise AlertRejected(422, f"'time' is not a date, got {raw[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_freshness(alert_time: datetime | None, received_at: datetime, *, max_age_s: int, max_ahead_s: int) -> None:
    """An alert whose own time lies outside [received - max_age, received + max_ahead] is stale (a replay,
    a queue that held it, a clock gone wrong): trading on it would trade on an old price."""
    if alert_time is None:
        return
    age = (received_at - alert_time).total_seconds()
    if age > max_age_s:
        raise AlertRejected(
            422,
            f"stale alert: its time {alert_time.isoformat()} is {age:.0f} s "
            f"before it arrived (at most {max_age_s} s allowed)",
        )
    if -age > max_ahead_s:
        raise AlertRejected(
            422,
            f"stale alert: its time {alert_time.isoformat()} is {-age:.0f} s "
            f"after it arrived (at most {max_ahead_s} s ahead allowed; check the "
            "sender's clock)",
        )


def check_content_type(content_type: str | None) -> None:
    mimetype = (content_type or "").split(";")[0].strip().lower()
    if mimetype not in ACCEPTED_CONTENT_TYPES:
        raise AlertRejected(
            415,
            f"content type {mimetype or 'missing'!r} is not accepted; send application/json or text/plain holding JSON",
        )


def decode_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of the body. TradingView sends its message as text/plain: the same JSON text."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AlertRejected(400, "body is not UTF-8 text") from None
    if not text.strip():
        raise AlertRejected(400, "body is empty; the alert message must be JSON")
    try:
        body = json.loads(text, parse_float=str, parse_int=str)
    except json.JSONDecodeError as exc:
        raise AlertRejected(400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(body, dict):
        raise AlertRejected(400, "the alert message must be a JSON object")
    return body


def parse_alert(body: dict[str, Any], *, fixed_symbol: str | None, allowed_actions: list[str]) -> Alert:
    """Validate the decoded body against the webhook's settings; raise AlertRejected saying what is wrong."""
    action_text = _text(body, "action", "side")
    if action_text is None:
        raise AlertRejected(422, "missing 'action' (buy, sell, close or cancel)")
    action = action_text.lower()
    if action not in ACTIONS:
        raise AlertRejected(422, f"unknown action {action_text[:20]!r}; expected one of {', '.join(ACTIONS)}")
    if action not in allowed_actions:
        raise AlertRejected(422, f"action {action!r} is not allowed on this webhook")
    raw_symbol = _text(body, "symbol", "ticker")
    symbol = fixed_symbol or (normalize_symbol(raw_symbol) if raw_symbol else None)
    if not symbol:
        raise AlertRejected(422, "missing symbol: put {{ticker}} in the message or fix the symbol on the webhook")
    if not fixed_symbol and (len(symbol) > MAX_SYMBOL_LENGTH or not symbol.isascii() or not symbol.isalnum()):
        raise AlertRejected(
            422,
            f"symbol {(raw_symbol or '')[:40]!r} is not a market symbol (at most "
            f"{MAX_SYMBOL_LENGTH} letters and digits)",
        )
    interval = _text(body, "interval")
    if interval is not None and not re.fullmatch(rf"[0-9A-Za-z]{{1,{MAX_INTERVAL_LENGTH}}}", interval):
        raise AlertRejected(422, f"'interval' must be a TradingView interval like 5, 60 or 1D, got {interval[:40]!r}")
    raw_time = _text(body, "time", "timenow")
    alert = Alert(
        action=action,
        symbol=symbol,
        quantity=_decimal(body, "contracts", "quantity", "qty"),
        price=_decimal(body, "price", "close"),
        stop_loss=_decimal(body, "stop_loss", "sl"),
        take_profit=_decimal(body, "take_profit", "tp"),
        trailing_stop_pct=_trail(body),
        take_profit_ladder=_ladder(body),
        interval=interval,
        time=parse_time(raw_time) if raw_time else None,
    )
    check_exit_prices(alert)
    check_exit_kinds(alert)
    return alert


def _trail(body: dict[str, Any]) -> Decimal | None:
    trail = _decimal(body, "trailing_stop_pct")
    low, high = TRAIL_PCT_RANGE
    if trail is not None and not low <= trail <= high:
        raise AlertRejected(422, f"'trailing_stop_pct' must be between {low} and {high} (%), got {trail}")
    return trail


def _ladder(body: dict[str, Any]) -> list[dict[str, str]] | None:
    """`take_profit_ladder`: 2 to 10 rungs `{"price": 64000, "size_pct": 50}` or `{"pct": 4, "size_pct": 50}`
    (`pct`: % from the entry's fill price), sizes adding up to 100."""
    raw = body.get("take_profit_ladder")
    if raw is None or _placeholder(raw):
        return None
    try:
        targets = targets_from_json(raw)
    except InvalidOrder as err:
        raise AlertRejected(422, f"'take_profit_ladder': {err.message}") from None
    for number, target in enumerate(targets, 1):
        for name in ("price", "pct", "size_pct"):
            value = getattr(target, name)
            problem = amount_problem(value) if value is not None else None
            if problem:
                raise AlertRejected(422, f"'take_profit_ladder' rung {number} {name} {problem}")
    return [_rung_json(target) for target in targets]


def _rung_json(target: Target) -> dict[str, str]:
    where = {"price": str(target.price)} if target.price is not None else {"pct": str(target.pct)}
    return where | {"size_pct": str(target.size_pct)}


def check_exit_kinds(alert: Alert) -> None:
    """One stop and one take-profit: a trailing stop replaces the stop-loss, a ladder the take-profit. A trailing
    stop and a ladder would both hold the same coins at a spot venue, so a ladder takes a fixed stop-loss."""
    if alert.trailing_stop_pct is not None and alert.stop_loss is not None:
        raise AlertRejected(422, "give either 'stop_loss' or 'trailing_stop_pct', not both")
    if alert.take_profit_ladder is not None and alert.take_profit is not None:
        raise AlertRejected(422, "give either 'take_profit' or 'take_profit_ladder', not both")
    if alert.take_profit_ladder is not None and alert.trailing_stop_pct is not None:
        raise AlertRejected(
            422,
            "a trailing stop and a take-profit ladder would hold the same coins at a spot venue: "
            "give the ladder a 'stop_loss' (each rung then carries its share of the stop)",
        )
    if alert.take_profit_ladder is None or alert.action not in ("buy", "sell") or alert.price is None:
        return
    long = alert.action == "buy"
    for number, rung in enumerate(alert.take_profit_ladder, 1):
        target = Decimal(rung["price"]) if "price" in rung else None
        if target is not None and (target <= alert.price if long else target >= alert.price):
            raise AlertRejected(
                422,
                f"a {alert.action}'s take-profit ladder rung {number} at {target} must be "
                f"{'above' if long else 'below'} the price {alert.price}",
            )


def check_exit_prices(alert: Alert) -> None:
    """A stop-loss / take-profit must sit on the losing / winning side of the entry.

    A buy (long) exits by selling: take-profit above, stop-loss below; a sell (short) the reverse.
    With the alert's price the check is against it, otherwise only the two prices are compared.
    A close or cancel ignores them (one TradingView message template often serves every action).
    """
    stop_loss, take_profit = alert.stop_loss, alert.take_profit
    if (stop_loss is None and take_profit is None) or alert.action not in ("buy", "sell"):
        return
    long = alert.action == "buy"
    if (
        stop_loss is not None
        and take_profit is not None
        and (stop_loss >= take_profit if long else stop_loss <= take_profit)
    ):
        raise AlertRejected(
            422,
            f"a {alert.action}'s stop-loss {stop_loss} must be "
            f"{'below' if long else 'above'} its take-profit {take_profit}",
        )
    if alert.price is None:
        return
    if take_profit is not None and (take_profit <= alert.price if long else take_profit >= alert.price):
        raise AlertRejected(
            422,
            f"a {alert.action}'s take-profit {take_profit} must be "
            f"{'above' if long else 'below'} the price {alert.price}",
        )
    if stop_loss is not None and (stop_loss >= alert.price if long else stop_loss <= alert.price):
        raise AlertRejected(
            422,
            f"a {alert.action}'s stop-loss {stop_loss} must be {'below' if long else 'above'} the price {alert.price}",
        )


def idempotency_key(webhook_id: int, body: dict[str, Any], alert_time: datetime | None, received_at: datetime) -> str:
    """Same webhook + same alert time + same content = the same alert (a retry or a replay).

    Without a time in the message, alerts with identical content within the same minute count as one.
    """
    content = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    body_hash = hashlib.sha256(content.encode()).hexdigest()
    moment = alert_time.isoformat() if alert_time else f"minute:{int(received_at.timestamp()) // 60}"
    return hashlib.sha256(f"{webhook_id}|{moment}|{body_hash}".encode()).hexdigest()


def alert_message_template(fixed_symbol: str | None, *, with_exits: bool = False) -> str:
    """The message to paste into TradingView's alert, using its placeholders. `with_exits` adds the
    stop-loss and take-profit prices, read from the strategy's first two plots."""
    fields = {"action": "{{strategy.order.action}}"}
    if not fixed_symbol:
        fields["ticker"] = "{{ticker}}"
    fields.update(
        {
            "contracts": "{{strategy.order.contracts}}",
            "price": "{{close}}",
            "interval": "{{interval}}",
            "time": "{{timenow}}",
        }
    )
    if with_exits:
        fields.update({"stop_loss": "{{plot_0}}", "take_profit": "{{plot_1}}"})
    return json.dumps(fields, indent=2)
