"""A trader's strategies and their versions: every save is kept, valid or not, exactly as typed.

Code that fails validation is still stored (marked invalid, with its errors) so nothing typed is ever
lost; only a valid version can run. Parameters stored on a version are the trader's overrides of the
class defaults, checked against the types of those defaults.
"""

from __future__ import annotations

import difflib
import json
import logging
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models.candles import Candle
from core.models.strategies import StrategyRecord, StrategyVersion
from core.strategies.contract import ParamError, resolve_params
from core.strategies.sandbox import SandboxLimits, run_sandboxed
from core.strategies.templates import get_template
from core.strategies.validation import ValidationReport, validate_strategy_code

logger = logging.getLogger(__name__)

MAX_NAME_CHARS = 80
MAX_NOTE_CHARS = 200
MAX_TRY_CANDLES = 5000
SIGNALS_JOB = "core.strategies.signals_job:signals"
BLANK_CODE = """from core.strategies import Strategy


class MyStrategy(Strategy):
    params = {}

    def init(self):
        pass

    def should_long(self):
        return False

    def should_exit(self):
        return False
"""


class StrategyStoreError(Exception):
    """A request the store refuses; the message is meant for the trader."""


class StrategyNotFound(StrategyStoreError):
    pass


class StrategyParamsInvalid(StrategyStoreError):
    """`.field_errors` maps parameter name -> message."""

    def __init__(self, field_errors: dict[str, str]):
        self.field_errors = field_errors
        super().__init__("; ".join(f"{name}: {message}" for name, message in field_errors.items()))


class NoCandles(StrategyStoreError):
    pass


# --------------------------------------------------------------------------- strategies


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise StrategyStoreError("the strategy needs a name")
    if len(name) > MAX_NAME_CHARS:
        raise StrategyStoreError(f"the name is too long ({len(name)} characters, at most {MAX_NAME_CHARS})")
    return name


def _ensure_name_free(session: Session, user_id: int, name: str, except_id: int | None = None) -> None:
    query = select(StrategyRecord.id).where(StrategyRecord.user_id == user_id, StrategyRecord.name == name)
    existing = session.scalar(query)
    if existing is not None and existing != except_id:
        raise StrategyStoreError(f"you already have a strategy named {name!r}")


def create_strategy(
    session: Session,
    user_id: int,
    name: str,
    *,
    template: str | None = None,
    code: str | None = None,
    description: str = "",
) -> StrategyRecord:
    """A new strategy whose version 1 is a template's code, the given code, or a blank skeleton."""
    name = _clean_name(name)
    _ensure_name_free(session, user_id, name)
    if template:
        try:
            chosen = get_template(template)
        except KeyError as exc:
            raise StrategyStoreError(exc.args[0]) from None
        code = chosen.code
        description = description or chosen.description
        note = f"from template {chosen.title}"
    else:
        note = "created" if code is not None else "blank"
        code = BLANK_CODE if code is None else code
    strategy = StrategyRecord(user_id=user_id, name=name, description=description or "")
    session.add(strategy)
    session.flush()
    save_version(session, strategy, code, note=note)
    logger.info("strategy.created", extra={"user_id": user_id, "strategy_id": strategy.id, "template": template})
    return strategy


def list_strategies(session: Session, user_id: int) -> list[StrategyRecord]:
    return list(
        session.scalars(select(StrategyRecord).where(StrategyRecord.user_id == user_id).order_by(StrategyRecord.name))
    )


def get_strategy(session: Session, user_id: int, strategy_id: int) -> StrategyRecord:
    """The user's strategy; someone else's is simply not found."""
    strategy = session.get(StrategyRecord, strategy_id)
    if strategy is None or strategy.user_id != user_id:
        raise StrategyNotFound(f"strategy {strategy_id} not found")
    return strategy


def get_version(strategy: StrategyRecord, number: int) -> StrategyVersion:
    for version in strategy.versions:
        if version.number == number:
            return version
    raise StrategyNotFound(f"{strategy.name} has no version {number}")


def rename_strategy(session: Session, strategy: StrategyRecord, name: str, description: str | None = None) -> None:
    name = _clean_name(name)
    _ensure_name_free(session, strategy.user_id, name, except_id=strategy.id)
    strategy.name = name
    if description is not None:
        strategy.description = description


def delete_strategy(session: Session, strategy: StrategyRecord) -> None:
    logger.info("strategy.deleted", extra={"user_id": strategy.user_id, "strategy_id": strategy.id})
    session.delete(strategy)
    session.flush()


# --------------------------------------------------------------------------- versions


def check_params(defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Overrides coerced to their default's type; every bad one reported at once by name."""
    holder = types.SimpleNamespace(params=dict(defaults))  # resolve_params reads only `.params`
    coerced: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, value in (overrides or {}).items():
        try:
            coerced[name] = resolve_params(holder, {name: value})[name]  # type: ignore[arg-type]
        except ParamError as exc:
            errors[name] = exc.message
    if errors:
        raise StrategyParamsInvalid(errors)
    return coerced


def _carried_params(previous: StrategyVersion | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The previous overrides that still fit the new code: renamed or retyped parameters fall back to defaults."""
    if previous is None:
        return {}
    kept = {}
    for name, value in (previous.params or {}).items():
        if name in defaults:
            try:
                kept.update(check_params(defaults, {name: value}))
            except StrategyParamsInvalid:
                continue
    return kept


def save_version(
    session: Session,
    strategy: StrategyRecord,
    code: str,
    *,
    params: Mapping[str, Any] | None = None,
    note: str = "",
) -> StrategyVersion:
    """Validate and store `code` as the next version, valid or not.

    `params` are overrides of the class defaults; None carries the previous version's overrides.
    Bad parameter values raise StrategyParamsInvalid and store nothing (the caller still holds the
    code and values as typed). Parameters of code that does not validate cannot be checked: the
    previous overrides are kept unchanged.
    """
    if not isinstance(code, str):
        raise StrategyStoreError("code must be text")
    if "\x00" in code:
        # Postgres text cannot hold NUL; no Python source contains one either.
        raise StrategyStoreError("the code contains a NUL character (\\x00); remove it and save again")
    surrogate = next((i for i, char in enumerate(code) if "\ud800" <= char <= "\udfff"), None)
    if surrogate is not None:  # half of a UTF-16 pair: not text that UTF-8 (and Postgres) can hold
        line = code.count("\n", 0, surrogate) + 1
        raise StrategyStoreError(f"line {line} holds a character that is not valid text (a lone surrogate); remove it")
    report = validate_strategy_code(code)
    previous = strategy.latest
    if not report.ok:
        stored_params = dict(previous.params or {}) if previous else {}
    elif params is None:
        stored_params = _carried_params(previous, report.params)
    else:
        known = {name: value for name, value in params.items() if name in report.params}
        stored_params = check_params(report.params, known)
    version = StrategyVersion(
        strategy=strategy,
        number=(previous.number + 1) if previous else 1,
        code=code,
        params=stored_params,
        valid=report.ok,
        errors=report.errors,
        class_name=report.class_name,
        note=(note or "")[:MAX_NOTE_CHARS],
    )
    session.add(version)
    session.flush()
    logger.info(
        "strategy.version_saved",
        extra={"strategy_id": strategy.id, "version": version.number, "valid": report.ok},
    )
    return version


def update_params(session: Session, strategy: StrategyRecord, overrides: Mapping[str, Any]) -> StrategyVersion:
    """A new version with the latest code and these parameter overrides."""
    latest = strategy.latest
    if latest is None or not latest.valid:
        raise StrategyStoreError("parameters can only be set on code that validates; fix the code first")
    report = validate_strategy_code(latest.code)
    unknown = sorted(set(overrides) - set(report.params))
    if unknown:
        raise StrategyParamsInvalid({name: "unknown parameter" for name in unknown})
    return save_version(session, strategy, latest.code, params=overrides, note="parameters changed")


def restore_version(session: Session, strategy: StrategyRecord, number: int) -> StrategyVersion:
    """Restoring never rewrites history: the old code and parameters become a new version."""
    old = get_version(strategy, number)
    return save_version(session, strategy, old.code, params=dict(old.params or {}), note=f"restored from v{number}")


def diff_versions(strategy: StrategyRecord, old_number: int, new_number: int) -> str:
    """Unified diff of two versions' code (and of their parameters when those differ)."""
    old, new = get_version(strategy, old_number), get_version(strategy, new_number)
    lines = list(
        difflib.unified_diff(
            old.code.splitlines(keepends=True),
            new.code.splitlines(keepends=True),
            fromfile=f"v{old.number}",
            tofile=f"v{new.number}",
        )
    )
    if (old.params or {}) != (new.params or {}):
        lines += difflib.unified_diff(
            [json.dumps(old.params or {}, sort_keys=True) + "\n"],
            [json.dumps(new.params or {}, sort_keys=True) + "\n"],
            fromfile=f"v{old.number} parameters",
            tofile=f"v{new.number} parameters",
        )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def effective_params(version: StrategyVersion, report: ValidationReport | None = None) -> dict[str, Any]:
    """Defaults of the version's class overridden by its stored values (empty for invalid code)."""
    report = report or validate_strategy_code(version.code)
    if not report.ok:
        return {}
    values = dict(report.params)
    values.update(_carried_params(version, report.params))
    return values


# --------------------------------------------------------------------------- try on candles


@dataclass(frozen=True)
class CandleSeries:
    venue: str
    symbol: str
    timeframe: str
    count: int

    @property
    def key(self) -> str:
        return f"{self.venue}|{self.symbol}|{self.timeframe}"


def candle_series(session: Session) -> list[CandleSeries]:
    """Every (venue, symbol, timeframe) with stored candles."""
    rows = session.execute(
        select(Candle.venue, Candle.symbol, Candle.timeframe, func.count())
        .group_by(Candle.venue, Candle.symbol, Candle.timeframe)
        .order_by(Candle.venue, Candle.symbol, Candle.timeframe)
    )
    return [CandleSeries(venue, symbol, timeframe, count) for venue, symbol, timeframe, count in rows]


def recent_candles(session: Session, venue: str, symbol: str, timeframe: str, count: int) -> list[list]:
    """The last `count` closed candles, oldest first, as [open_time, open, high, low, close, volume]."""
    if not isinstance(count, int) or not 2 <= count <= MAX_TRY_CANDLES:
        raise StrategyStoreError(f"the number of candles must be between 2 and {MAX_TRY_CANDLES}")
    rows = session.scalars(
        select(Candle)
        .where(Candle.venue == venue, Candle.symbol == symbol, Candle.timeframe == timeframe)
        .order_by(Candle.open_time.desc())
        .limit(count)
    ).all()
    if not rows:
        raise NoCandles(
            f"no {timeframe} candles of {symbol} on {venue} are stored yet: start the feeds process "
            "(`aristobot feeds`) or import a CSV with `aristobot candles import`"
        )
    # Decimal -> str keeps every digit across the JSON boundary; the job parses them.
    return [[c.open_time, str(c.open), str(c.high), str(c.low), str(c.close), str(c.volume)] for c in reversed(rows)]


@dataclass(frozen=True)
class TryResult:
    candles: list[list]
    signals: list[dict]
    trades: int
    summary: dict


def try_on_candles(
    code: str,
    params: Mapping[str, Any] | None,
    candles: list[list],
    *,
    limits: SandboxLimits | None = None,
) -> TryResult:
    """Run the code over the candles in the sandbox; raises SandboxError with what failed and where."""
    result = run_sandboxed(code, SIGNALS_JOB, {"candles": candles, "params": dict(params or {})}, limits=limits)
    return TryResult(
        candles=candles,
        signals=result.get("signals", []),
        trades=int(result.get("trades", 0)),
        summary=result.get("summary", {}),
    )
