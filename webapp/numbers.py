"""Numbers for humans, one rule for every page: money in 2 decimals with thousands separators (8 when the currency is a
crypto asset such as BTC, whose hundredths are worth too much to round away), prices by the
symbol's tick size, quantities by its step (a dust remainder below the step shows as zero), percentages in 2.

Template filters: `{{ value|money }}`, `{{ value|money(currency) }}`, `{{ value|price(tick) }}`,
`{{ value|qty(step) }}`, `{{ value|pct }}`, `{{ fraction|share }}`. A missing value reads "—"; a missing increment falls
back to the value's own digits (at most 8). `grid(broker_id, symbol)` (a template global) gives a market's tick and step
from its stored rules, read once per request: `{% set m = grid(o.broker_id, o.symbol) %}{{ o.price|price(m.tick) }}`;
`market_grid(venue, symbol, timeframe)` the same for a market named without a broker (a backtest's).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from flask import Flask, g
from flask_login import current_user
from sqlalchemy import select

from core.brokers import rules_from_row, symbol_rules
from core.infra.db import new_session
from core.models import BrokerConnection, Candle, SymbolRule

MISSING = "—"
FALLBACK_PLACES = 8
# Currencies counted in hundredths: fiat and the dollar/euro stablecoins. Any other currency (a BTC- or ETH-quoted
# market's P&L) shows 8 decimals.
CASH_LIKE = frozenset(
    {"USD", "EUR", "GBP", "JPY", "CHF", "AUD", "CAD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USDE", "EURC"}
)
CRYPTO_MONEY_PLACES = 8


def places(increment: Decimal | None) -> int | None:
    """Decimal places of a tick or step: 0.01 -> 2, 0.00001000 -> 5, 1 -> 0, 10 -> 0; None for none."""
    if increment is None or increment <= 0:
        return None
    return places_of(increment)


def places_of(value: Decimal) -> int:
    """The decimal places a value is written with: 46190.44000000 -> 2, 51000 -> 0."""
    return max(0, -int(value.normalize().as_tuple().exponent))


def _rounded(value: Decimal, digits: int, rounding: str) -> Decimal:
    rounded = value.quantize(Decimal(1).scaleb(-digits), rounding=rounding)
    return abs(rounded) if rounded == 0 else rounded  # never "-0.00"


def _grouped(value: Decimal, digits: int, rounding: str) -> str:
    return f"{_rounded(value, digits, rounding):,.{digits}f}"


def money(value: Decimal | float | int | None, currency: str | None = None) -> str:
    """46694.4852208 -> "46,694.49"; in BTC, 0.000123456 -> "0.00012346"."""
    if value is None:
        return MISSING
    digits = 2 if currency is None or currency.upper() in CASH_LIKE else CRYPTO_MONEY_PLACES
    return _grouped(Decimal(str(value)), digits, ROUND_HALF_EVEN)


def price(value: Decimal | float | None, tick: Decimal | None = None) -> str:
    """A price on the symbol's tick (46190.44000000 at tick 0.01 -> "46,190.44")."""
    if value is None:
        return MISSING
    value = Decimal(str(value))
    digits = places(tick)
    if digits is None:
        digits = min(FALLBACK_PLACES, places_of(value))
    return _grouped(value, digits, ROUND_HALF_EVEN)


def qty(value: Decimal | float | None, step: Decimal | None = None) -> str:
    """A quantity on the symbol's step, rounded down: 0.12345678 at step 0.001 -> "0.123"; dust -> "0"."""
    if value is None:
        return MISSING
    value = Decimal(str(value))
    digits = places(step)
    if digits is None:
        digits = min(FALLBACK_PLACES, places_of(value))
    if step is not None and step > 0 and abs(value) < step:
        return "0"
    return _grouped(value, digits, ROUND_DOWN)


def pct(value: Decimal | float | None) -> str:
    """A percentage already in percent: 1.2345 -> "+1.23%" (the sign shown: it is a change)."""
    if value is None:
        return MISSING
    rounded = _rounded(Decimal(str(value)), 2, ROUND_HALF_EVEN)
    return f"{rounded:+,.2f}%" if rounded else "0.00%"


def share(value: Decimal | float | None) -> str:
    """A fraction of the whole as a percentage, no sign (a win rate): 0.5 -> "50.00%"."""
    if value is None:
        return MISSING
    return f"{_rounded(Decimal(str(value)) * 100, 2, ROUND_HALF_EVEN):,.2f}%"


@dataclass(frozen=True)
class Grid:
    tick: Decimal | None = None
    step: Decimal | None = None


def grid(broker_id: int, symbol: str) -> Grid:
    """The market's tick and step (none known: the formatters fall back to the value's digits)."""
    cache: dict[tuple[int, str], Grid] = g.setdefault("market_grids", {})
    key = (broker_id, symbol)
    if key not in cache:
        with new_session() as session:
            rules = symbol_rules(session, broker_id, symbol)
        cache[key] = Grid(rules.tick_size, rules.step_size) if rules else Grid()
    return cache[key]


CANDLES_FOR_TICK = 100


def market_grid(venue: str, symbol: str, timeframe: str) -> Grid:
    """A market named by venue (a backtest's): its rules as stored for one of the trader's brokers on that venue;
    else the tick its stored candles show (the most decimal places among its latest closes) and no step."""
    cache: dict[tuple[str, str, str], Grid] = g.setdefault("venue_grids", {})
    key = (venue, symbol, timeframe)
    if key not in cache:
        with new_session() as session:
            row = session.scalar(
                select(SymbolRule)
                .join(BrokerConnection, BrokerConnection.id == SymbolRule.broker_id)
                .where(
                    BrokerConnection.user_id == current_user.id,
                    BrokerConnection.venue == venue,
                    SymbolRule.symbol == symbol,
                )
                .limit(1)
            )
            if row is not None:
                rules = rules_from_row(row)
                cache[key] = Grid(rules.tick_size, rules.step_size)
            else:
                closes = session.scalars(
                    select(Candle.close)
                    .where(Candle.venue == venue, Candle.symbol == symbol, Candle.timeframe == timeframe)
                    .order_by(Candle.open_time.desc())
                    .limit(CANDLES_FOR_TICK)
                ).all()
                digits = max((places_of(close) for close in closes), default=None)
                cache[key] = Grid(tick=Decimal(1).scaleb(-digits) if digits is not None else None)
    return cache[key]


def init_app(app: Flask) -> None:
    app.add_template_global(market_grid, "market_grid")
    for name, function in (("money", money), ("price", price), ("qty", qty), ("pct", pct), ("share", share)):
        app.add_template_filter(function, name)
    app.add_template_global(grid, "grid")
