"""What a backtest run is made of: the request, its parameters and parameter grids (parsed and checked
against the strategy's declared defaults before anything is queued), the candles and strategy versions
it can use."""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import product
from typing import Any

from sqlalchemy import Float, cast, func, select
from sqlalchemy.orm import Session

from core.backtest.engine import BacktestInputError, BacktestSettings
from core.candles.csv_io import CANDLE_COLUMNS
from core.models import Candle, StrategyRecord, StrategyVersion
from core.strategies.contract import ParamError, format_candle_time, resolve_params

MAX_GRID_COMBINATIONS = 200
MAX_PARAM_MAGNITUDE = 1e12

# Metrics a grid heatmap can rank by; for these a smaller value is the better one.
GRID_METRICS = (
    "total_return_pct", "cagr_pct", "sharpe", "sortino", "calmar", "max_drawdown_pct", "profit_factor",
    "win_rate_pct", "num_trades", "expectancy_pct", "exposure_pct", "fees_paid", "max_drawdown_duration_days",
)  # fmt: skip
LOWER_IS_BETTER = frozenset({"fees_paid", "max_drawdown_duration_days"})


class RunInputError(ValueError):
    """A run request that cannot start; the message says what to change."""


@dataclass(frozen=True)
class RunRequest:
    strategy_version_id: int
    venue: str
    symbol: str
    timeframe: str
    start_ms: int | None = None
    end_ms: int | None = None
    fee: Decimal = Decimal("0.001")
    slippage_bps: Decimal = Decimal("0")
    cash: Decimal = Decimal("10000")
    params: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list] | None = None
    grid_metric: str | None = None


@dataclass(frozen=True)
class Dataset:
    """Candles present in the table for one (venue, symbol, timeframe)."""

    venue: str
    symbol: str
    timeframe: str
    candles: int
    first_ms: int
    last_ms: int

    @property
    def key(self) -> str:
        return f"{self.venue}|{self.symbol}|{self.timeframe}"

    @property
    def label(self) -> str:
        first, last = (
            datetime.fromtimestamp(t / 1000, UTC).strftime("%Y-%m-%d") for t in (self.first_ms, self.last_ms)
        )
        return f"{self.symbol} {self.timeframe} · {self.venue} ({first} → {last}, {self.candles:,} candles)"


def parse_params(text: str) -> dict[str, str]:
    """`fast=10, slow=30` (commas, semicolons or new lines between) -> {"fast": "10", "slow": "30"}."""
    params: dict[str, str] = {}
    for item in re.split(r"[,;\n]", text or ""):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or not value.strip():
            raise RunInputError(f"parameters: {item.strip()!r} is not NAME=VALUE")
        params[name] = value.strip()
    return params


_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^(?P<a>{_NUMBER})\s*\.\.\s*(?P<b>{_NUMBER})\s*(?:(?::|step)\s*(?P<step>{_NUMBER}))?$")


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RunInputError(f"grid: {what} {text!r} is not a number") from None
    if not value.is_finite() or abs(value) > Decimal(str(MAX_PARAM_MAGNITUDE)):
        raise RunInputError(f"grid: {what} {text!r} is out of range")
    return value


def _plain_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _grid_values(name: str, spec: str) -> list:
    match = _RANGE.match(spec)
    if match is None:
        values = [v.strip() for v in spec.split(",") if v.strip()]
        if ".." in spec:
            raise RunInputError(f"grid: {name} = {spec!r} is not START..END[:STEP] nor a list V1, V2, ...")
        if not values:
            raise RunInputError(f"grid: no values for {name!r}")
        if len(values) > MAX_GRID_COMBINATIONS:
            raise RunInputError(
                f"grid: {len(values)} values for {name!r}; at most {MAX_GRID_COMBINATIONS} combinations in all"
            )
        return values
    low, high = _decimal(match["a"], "start"), _decimal(match["b"], "end")
    step = _decimal(match["step"], "step") if match["step"] else Decimal(1)
    if step <= 0:
        raise RunInputError(f"grid: the step of {name!r} must be positive")
    if low > high:
        raise RunInputError(f"grid: {name!r} goes from {low} to {high}; the start must not exceed the end")
    count = int((high - low) / step) + 1
    if count > MAX_GRID_COMBINATIONS:
        raise RunInputError(
            f"grid: {name!r} alone has {count:,} values; at most {MAX_GRID_COMBINATIONS} combinations in all "
            "(use a larger step)"
        )
    return [_plain_number(low + k * step) for k in range(count)]


def parse_grid(text: str) -> dict[str, list]:
    """One parameter per line: `fast = 5..20` (step 1), `fast = 5..20:5` / `5..20 step 5`, or `fast = 5, 8, 13`.
    Refuses more than MAX_GRID_COMBINATIONS combinations before building any of them."""
    grid: dict[str, list] = {}
    for line in re.split(r"[;\n]", text or ""):
        if not line.strip():
            continue
        name, sep, spec = line.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or not spec.strip():
            raise RunInputError(f"grid: {line.strip()!r} is not NAME = START..END[:STEP] or NAME = V1, V2, ...")
        if name in grid:
            raise RunInputError(f"grid: {name!r} appears twice")
        grid[name] = _grid_values(name, spec.strip())
    combos = math.prod(len(v) for v in grid.values()) if grid else 0
    if combos > MAX_GRID_COMBINATIONS:
        sizes = " × ".join(str(len(v)) for v in grid.values())
        raise RunInputError(
            f"grid: {sizes} = {combos:,} combinations; at most {MAX_GRID_COMBINATIONS} (use larger steps)"
        )
    return grid


def grid_combinations(grid: dict[str, list]) -> list[dict]:
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in product(*(grid[n] for n in names))]


def default_params(code: str) -> dict | None:
    """The `params = {...}` literal of the strategy class, read without running the code (None: not found)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            if isinstance(statement, ast.Assign):
                targets, literal = statement.targets, statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                targets, literal = [statement.target], statement.value
            else:
                continue
            if any(isinstance(t, ast.Name) and t.id == "params" for t in targets):
                try:
                    value = ast.literal_eval(literal)
                except ValueError:
                    return None
                return value if isinstance(value, dict) else None
    return None


def checked_params(defaults: dict | None, overrides: dict, where: str) -> dict:
    """Names and types checked against the strategy's defaults (when readable), values kept as typed."""
    if defaults is None:
        return dict(overrides)
    holder = type("Declared", (), {"params": defaults})
    try:
        resolved = resolve_params(holder, overrides)
    except ParamError as exc:
        raise RunInputError(f"{where}: {exc.message}") from None
    for name in overrides:
        value = resolved[name]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > MAX_PARAM_MAGNITUDE:
            raise RunInputError(f"{where}: {name} = {value!r} is absurdly large")
    return {name: resolved[name] for name in overrides}


def available_datasets(session: Session) -> list[Dataset]:
    stmt = (
        select(
            Candle.venue,
            Candle.symbol,
            Candle.timeframe,
            func.count(),
            func.min(Candle.open_time),
            func.max(Candle.open_time),
        )
        .group_by(Candle.venue, Candle.symbol, Candle.timeframe)
        .order_by(Candle.symbol, Candle.timeframe, Candle.venue)
    )
    return [Dataset(*row) for row in session.execute(stmt).all()]


def _range_filter(stmt, venue: str, symbol: str, timeframe: str, start_ms: int | None, end_ms: int | None):
    stmt = stmt.where(Candle.venue == venue, Candle.symbol == symbol, Candle.timeframe == timeframe)
    if start_ms is not None:
        stmt = stmt.where(Candle.open_time >= start_ms)
    if end_ms is not None:
        stmt = stmt.where(Candle.open_time <= end_ms)
    return stmt


def count_candles(session: Session, venue: str, symbol: str, timeframe: str, start_ms=None, end_ms=None) -> int:
    stmt = _range_filter(select(func.count()).select_from(Candle), venue, symbol, timeframe, start_ms, end_ms)
    return int(session.execute(stmt).scalar_one())


def load_candles(session: Session, venue: str, symbol: str, timeframe: str, start_ms=None, end_ms=None) -> dict:
    """Column lists (floats; prices are Numeric in the table) in open-time order, as the sandbox takes them."""
    columns = [Candle.open_time] + [cast(getattr(Candle, c), Float) for c in CANDLE_COLUMNS[1:]]
    stmt = _range_filter(select(*columns), venue, symbol, timeframe, start_ms, end_ms).order_by(Candle.open_time)
    rows = session.execute(stmt).all()
    if not rows:
        return {c: [] for c in CANDLE_COLUMNS}
    return {name: list(values) for name, values in zip(CANDLE_COLUMNS, zip(*rows, strict=True), strict=True)}


def describe_range(start_ms: int | None, end_ms: int | None) -> str:
    return f"between {format_candle_time(start_ms) or 'the start'} and {format_candle_time(end_ms) or 'the end'}"


def owned_version(session: Session, user_id: int, version_id: int) -> StrategyVersion | None:
    stmt = (
        select(StrategyVersion)
        .join(StrategyRecord)
        .where(StrategyVersion.id == version_id, StrategyRecord.user_id == user_id)
    )
    return session.execute(stmt).scalar_one_or_none()


def strategy_versions(session: Session, user_id: int) -> list[StrategyVersion]:
    """The user's valid versions, newest strategy first, newest version first."""
    stmt = (
        select(StrategyVersion)
        .join(StrategyRecord)
        .where(StrategyRecord.user_id == user_id, StrategyVersion.valid.is_(True))
        .order_by(StrategyRecord.updated_at.desc(), StrategyRecord.id, StrategyVersion.number.desc())
    )
    return list(session.execute(stmt).scalars())


def check_settings(request: RunRequest) -> BacktestSettings:
    try:
        return BacktestSettings(
            fee=float(request.fee),
            slippage_bps=float(request.slippage_bps),
            cash=float(request.cash),
            start_ms=request.start_ms,
            end_ms=request.end_ms,
        ).validated()
    except BacktestInputError as exc:
        raise RunInputError(str(exc)) from None
