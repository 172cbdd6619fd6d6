"""Trade-by-trade comparison of a bot's live trades with the backtest of the same candles: `aristobot bench
parity` (a replayed file) and the bot page's "Backtest this bot over its live period" (core/bots/live_backtest.py).

The rules (docs/METRICS.md, "Backtest ↔ live parity"; `RULES` names the one behind each difference):
- trades are paired by entry candle (one present on one side only is a mismatch); a pair matches when
  side, entry candle, exit candle and exit reason are the same, the quantities agree within
  `qty_tolerance` (relative) and each price within `price_tolerance_bps` of the backtest's (its fill
  model: the candle's open with slippage, the stop or target level);
- a position the bot still holds when the file ends matches the backtest's `end_of_data` exit;
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal

# The parity defaults (docs/METRICS.md): the simulator's half spread, and the tolerances of a match.
SLIPPAGE_BPS = 0.5
PRICE_TOLERANCE_BPS = 5.0
QTY_TOLERANCE = 0.005
# A limit or OCO sell leaving more than this share of the entry is a ladder's rung, not the position's exit.
LADDER_REST = 0.02

# Each difference `differences` names, by its first words -> the rule of docs/METRICS.md behind it.
RULES = {
    "live only": "A match (trades pair by entry candle)",
    "in the backtest only": "A match (trades pair by entry candle)",
    "side": "A match",
    "entry candle": "A match",
    "exit candle": "A match",
    "exit reason": "A match",
    "entry price": "Slippage",
    "exit price": "Slippage",
    "quantity": "Sizing",
    "still open live": "The end of the file",
}


def rule_of(difference: str) -> str:
    """The METRICS.md rule a difference breaks."""
    return next((rule for start, rule in RULES.items() if difference.startswith(start)), "A match")


@dataclass(frozen=True)
class LiveFill:
    """One fill of the bot's ledger, timed in market ms (the replay's clock, not the wall's)."""

    side: str  # buy | sell
    order_type: str  # market | oco | stop_loss | limit ...
    market_ms: int
    price: Decimal
    quantity: Decimal
    order_id: int


@dataclass
class TradeView:
    side: str
    entry_ms: int  # open time of the candle the entry filled in
    entry_price: float
    quantity: float
    exit_ms: int | None = None
    exit_price: float | None = None
    exit_reason: str = "open"

    def as_dict(self) -> dict:
        return asdict(self)


def candle_of(market_ms: int, candle_ms: int = 60_000) -> int:
    return market_ms - market_ms % candle_ms


def _vwap(fills: list[LiveFill]) -> tuple[float, float]:
    quantity = sum((f.quantity for f in fills), Decimal(0))
    notional = sum((f.price * f.quantity for f in fills), Decimal(0))
    return float(quantity), float(notional / quantity) if quantity else 0.0


def _exit_reason(order_type: str, price: float, entry_price: float) -> str:
    if order_type in ("market", "trailing_stop"):
        return "signal" if order_type == "market" else "trailing_stop"
    return "stop_loss" if price < entry_price else "take_profit"


def live_trades(fills: list[LiveFill], candle_ms: int = 60_000) -> list[TradeView]:
    """Round trips of a long-only spot bot from its fills: buys open, sells close (grouped by order).

    A take-profit ladder sells a position in parts: a sell that leaves more than `LADDER_REST` of the entry
    is a trade of its own (the backtest's trade per exit), the position's view keeping what is left; the
    stop legs of a ladder's OCO rungs, firing in one candle, are one exit (the backtest's stop closing the
    rest)."""
    orders: dict[int, list[LiveFill]] = {}
    for fill in sorted(fills, key=lambda f: (f.market_ms, f.order_id)):
        orders.setdefault(fill.order_id, []).append(fill)
    trades: list[TradeView] = []
    bought = held = 0.0
    for group in orders.values():
        first = group[0]
        quantity, price = _vwap(group)
        if first.side == "buy":
            trades.append(TradeView("long", candle_of(first.market_ms, candle_ms), price, quantity))
            bought = held = quantity
            continue
        if not trades or trades[-1].exit_ms is not None:
            continue  # a sell with nothing open (not the bot's round trip)
        trade = trades[-1]
        held -= quantity
        exit_view = TradeView(
            "long", trade.entry_ms, trade.entry_price, quantity, candle_of(first.market_ms, candle_ms)
        )
        exit_view.exit_price, exit_view.exit_reason = price, _exit_reason(first.order_type, price, trade.entry_price)
        part = trades[-2] if len(trades) > 1 else None
        if part is not None and exit_view.exit_reason == "stop_loss" and _same_exit(part, exit_view):
            # another stop leg of the ladder's OCO rungs
            trades.remove(part)
            exit_view.exit_price = (part.quantity * (part.exit_price or 0.0) + quantity * price) / (
                part.quantity + quantity
            )
            exit_view.quantity += part.quantity
            trade.quantity += part.quantity
        if held > LADDER_REST * bought:
            trade.quantity = held
            trades.insert(len(trades) - 1, exit_view)
            continue
        trade.exit_ms, trade.exit_price, trade.exit_reason = (
            exit_view.exit_ms,
            exit_view.exit_price,
            exit_view.exit_reason,
        )
    return trades


def _same_exit(one: TradeView, two: TradeView) -> bool:
    return (one.entry_ms, one.exit_ms, one.exit_reason) == (two.entry_ms, two.exit_ms, two.exit_reason)


def backtest_trades(rows: list[dict]) -> list[TradeView]:
    return [
        TradeView(
            row["side"],
            int(row["entry_time_ms"]),
            float(row["entry_price"]),
            float(row["size"]),
            int(row["exit_time_ms"]),
            float(row["exit_price"]),
            row["exit_reason"],
        )
        for row in rows
    ]


def _bps(a: float, b: float) -> float:
    return abs(a - b) / b * 10_000 if b else 0.0


def differences(live: TradeView, test: TradeView, price_tolerance_bps: float, qty_tolerance: float) -> list[str]:
    """What differs between a live trade and its backtest twin, in words (empty: they match)."""
    out = []
    if live.side != test.side:
        out.append(f"side {live.side} vs {test.side}")
    if live.entry_ms != test.entry_ms:
        out.append(f"entry candle {live.entry_ms} vs {test.entry_ms}")
    if _bps(live.entry_price, test.entry_price) > price_tolerance_bps:
        out.append(f"entry price {live.entry_price:g} vs {test.entry_price:g}")
    if test.quantity and abs(live.quantity - test.quantity) / test.quantity > qty_tolerance:
        out.append(f"quantity {live.quantity:g} vs {test.quantity:g}")
    if live.exit_reason == "open":
        if test.exit_reason != "end_of_data":
            out.append(f"still open live, closed by {test.exit_reason} at {test.exit_ms} in the backtest")
        return out
    if live.exit_ms != test.exit_ms:
        out.append(f"exit candle {live.exit_ms} vs {test.exit_ms}")
    if live.exit_reason != test.exit_reason:
        out.append(f"exit reason {live.exit_reason} vs {test.exit_reason}")
    if live.exit_price is not None and test.exit_price and _bps(live.exit_price, test.exit_price) > price_tolerance_bps:
        out.append(f"exit price {live.exit_price:g} vs {test.exit_price:g}")
    return out


@dataclass(frozen=True)
class Comparison:
    mismatched: int
    details: list[dict]  # the mismatched rows
    worst_entry_bps: float
    worst_exit_bps: float
    rows: list[dict] = field(default_factory=list)  # every pair, matched or not, in entry order


def compare(
    live: list[TradeView], test: list[TradeView], *, price_tolerance_bps: float, qty_tolerance: float
) -> Comparison:
    rows: list[dict] = []
    worst_entry = worst_exit = 0.0
    i = j = 0
    while i < len(live) or j < len(test):
        one = live[i] if i < len(live) else None
        two = test[j] if j < len(test) else None
        if one is None or (two is not None and two.entry_ms < one.entry_ms):
            rows.append({"differences": ["in the backtest only"], "backtest": two and two.as_dict()})
            j += 1
            continue
        if two is None or one.entry_ms < two.entry_ms:
            rows.append({"differences": ["live only"], "live": one.as_dict()})
            i += 1
            continue
        worst_entry = max(worst_entry, _bps(one.entry_price, two.entry_price))
        if one.exit_price is not None and two.exit_price:
            worst_exit = max(worst_exit, _bps(one.exit_price, two.exit_price))
        found = differences(one, two, price_tolerance_bps, qty_tolerance)
        rows.append({"differences": found, "live": one.as_dict(), "backtest": two.as_dict()})
        i, j = i + 1, j + 1
    details = [row for row in rows if row["differences"]]
    return Comparison(len(details), details, round(worst_entry, 2), round(worst_exit, 2), rows)
