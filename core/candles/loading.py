"""Market data loading: CSV import and paginated REST download, both idempotent, both reporting rows
added, duplicates skipped and gaps found. Used by `aristobot candles ...` and the Market data page.

The CSV reader (core/candles/csv_io.py) stops at the first bad row; here a file is read in chunks and a
bad row is set aside with its line number, so one broken line never costs the good ones.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

import numpy as np
import pandas as pd
import redis
from sqlalchemy import select
from sqlalchemy import text as text_sql
from sqlalchemy.engine import Engine

from core.candles.candle import TIMEFRAME_MS, ClosedCandle, timeframe_ms
from core.candles.csv_io import (
    CandleFileError,
    Gap,
    _looks_numeric,
    candle_interval_ms,
    find_gaps,
    parse_candles_csv,
)
from core.candles.store import INSERT_CHUNK, insert_candles
from core.exchanges.errors import RateLimited, Unavailable
from core.exchanges.ratelimit import background
from core.exchanges.spot.base import Exchange
from core.exchanges.spot.binance_klines import rest_base_url
from core.exchanges.spot.registry import VENUES, make_exchange
from core.infra.bus import download_checkpoint, get_redis
from core.infra.config import TIMEFRAMES, get_settings
from core.infra.db import get_engine
from core.models import Candle

log = logging.getLogger(__name__)

CHUNK_LINES = 2000
MAX_BAD_ROWS = 10_000
KLINE_PAGE = 1000
CHECKPOINT_TTL_S = 7 * 24 * 3600
STORED_QUANTUM = Decimal("1e-12")  # the candles table's NUMERIC(38, 12)
Progress = Callable[[int, int, str], None]  # (done, total, what)
_NAME = re.compile(r"^([A-Z0-9]{2,32})-(1m|3m|5m|15m|1h|4h)\b")


class LoadError(ValueError):
    """Input that cannot be loaded at all (the message says which and why)."""


class ImportRefused(LoadError):
    """A file with rows that cannot be stored: nothing of it was. `report.bad_rows` names every one."""

    def __init__(self, source: str, report: LoadReport):
        self.report = report
        first = report.bad_rows[0]
        super().__init__(
            f"{source}: nothing imported, {len(report.bad_rows)} row(s) refused, the first at "
            f"line {first.line}: {first.error}"
        )


@dataclass
class BadRow:
    line: int
    error: str


@dataclass
class LoadReport:
    venue: str
    symbol: str
    timeframe: str
    rows: int = 0
    added: int = 0
    duplicates: int = 0
    gaps: list[Gap] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    first: int | None = None
    last: int | None = None

    def as_dict(self) -> dict:
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "rows": self.rows,
            "added": self.added,
            "duplicates": self.duplicates,
            "first": self.first,
            "last": self.last,
            "gaps": [g.as_dict() for g in self.gaps],
            "missing": sum(g.missing for g in self.gaps),
            "bad_rows": [{"line": b.line, "error": b.error} for b in self.bad_rows],
        }

    def summary(self) -> str:
        return (
            f"{self.venue} {self.symbol} {self.timeframe}: {self.rows} rows, {self.added} added, "
            f"{self.duplicates} duplicates skipped, {len(self.gaps)} gaps "
            f"({sum(g.missing for g in self.gaps)} missing), {len(self.bad_rows)} bad rows"
        )


def check_target(venue: str, symbol: str, timeframe: str) -> None:
    if venue not in VENUES:
        raise LoadError(f"unknown venue {venue!r}; expected one of {', '.join(sorted(VENUES))}")
    if not symbol or not symbol.isalnum() or not symbol.isupper() or len(symbol) > 32:
        raise LoadError(f"symbol {symbol!r} must be 1-32 upper-case letters and digits, like BTCUSDT")
    if timeframe not in TIMEFRAMES:
        raise LoadError(f"unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAMES)}")


def guess_symbol_timeframe(path: str | Path) -> tuple[str | None, str | None]:
    """BTCUSDT-1m.csv, BTCUSDT-1m-2024-01.csv (Binance dumps) -> ("BTCUSDT", "1m")."""
    match = _NAME.match(Path(path).name)
    return (match.group(1), match.group(2)) if match else (None, None)


# --- tolerant CSV reading ---------------------------------------------------------------------


def read_rows(text: str, source: str = "candles") -> tuple[pd.DataFrame, np.ndarray, list[BadRow]]:
    """Good rows (a frame as parse_candles_csv returns), their file line numbers, and the bad rows."""
    lines = text.lstrip("\ufeff").split("\n")
    first = lines[0].strip() if lines else ""
    if not first:
        raise CandleFileError("no candles (the file is empty)", path=source)
    has_header = not _looks_numeric(first.split(",")[0])
    header = lines[0].rstrip("\r") if has_header else None
    numbered = [(i + 1, line.rstrip("\r")) for i, line in enumerate(lines) if line.strip()]
    if has_header:
        numbered = numbered[1:]
    frames: list[pd.DataFrame] = []
    line_numbers: list[int] = []
    bad: list[BadRow] = []
    for start in range(0, len(numbered), CHUNK_LINES):
        frame, kept = _read_chunk(numbered[start : start + CHUNK_LINES], header, source, bad)
        if frame is not None:
            frames.append(frame)
            line_numbers.extend(kept)
        if len(bad) > MAX_BAD_ROWS:
            raise CandleFileError(f"more than {MAX_BAD_ROWS} bad rows; is this a candle file?", path=source)
    if not frames:
        if not bad:
            raise CandleFileError("no candles (only a header)", path=source)
        return pd.DataFrame(columns=["open_time"]), np.array([], dtype=np.int64), bad
    frame = pd.concat(frames, ignore_index=True)
    lines_of = np.array(line_numbers, dtype=np.int64)
    return _drop_unordered(frame, lines_of, bad)


def _read_chunk(
    numbered: list[tuple[int, str]], header: str | None, source: str, bad: list[BadRow]
) -> tuple[pd.DataFrame | None, list[int]]:
    offset = 1 if header is not None else 0
    while numbered:
        text = "\n".join(([header] if header is not None else []) + [line for _, line in numbered])
        try:
            return parse_candles_csv(text, source), [n for n, _ in numbered]
        except CandleFileError as exc:
            if exc.line is None or exc.line - offset < 1 or exc.line - offset > len(numbered):
                if header is not None and exc.line == 1:
                    raise  # the header itself is wrong: nothing in the file can be trusted
                bad.extend(BadRow(n, _message(exc)) for n, _ in numbered)
                return None, []
            line_number, _ = numbered.pop(exc.line - offset - 1)
            bad.append(BadRow(line_number, _message(exc)))
    return None, []


def _message(exc: CandleFileError) -> str:
    return str(exc).split(": ", 1)[-1]


def _drop_unordered(frame: pd.DataFrame, lines_of: np.ndarray, bad: list[BadRow]):
    """Across chunks: a row not after every row before it is set aside, as inside a chunk."""
    times = frame["open_time"].to_numpy()
    before = np.maximum.accumulate(np.concatenate([[np.iinfo(np.int64).min], times[:-1]]))
    unordered = times <= before
    for index in np.flatnonzero(unordered):
        bad.append(
            BadRow(
                int(lines_of[index]),
                f"open_time {int(times[index])} is a duplicate or out of order (an earlier row is at or after it)",
            )
        )
    keep = ~unordered
    bad.sort(key=lambda b: b.line)
    return frame[keep].reset_index(drop=True), lines_of[keep], bad


# --- import -------------------------------------------------------------------------------------


def _stored_values(conn, venue: str, symbol: str, timeframe: str, first: int, last: int) -> dict[int, tuple]:
    rows = conn.execute(
        select(Candle.open_time, Candle.open, Candle.high, Candle.low, Candle.close, Candle.volume).where(
            Candle.venue == venue,
            Candle.symbol == symbol,
            Candle.timeframe == timeframe,
            Candle.open_time.between(first, last),
        )
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def _as_stored(value: Decimal) -> Decimal:
    """The value as a NUMERIC(38, 12) column keeps it (Postgres rounds half away from zero)."""
    with localcontext() as context:
        context.prec = 60
        return value.quantize(STORED_QUANTUM, rounding=ROUND_HALF_UP)


def _refusals(conn, candles: list[ClosedCandle], lines: list[int], now_ms: int) -> list[BadRow]:
    """Rows an import must not store: candles not closed yet (or in the future), and candles that differ
    from the stored one at the same time (whoever stored it: the feed's are the reference, and an import
    never silently rewrites history a backtest may already have used)."""
    refused = []
    span = timeframe_ms(candles[0].timeframe)
    for candle, line in zip(candles, lines, strict=True):
        if candle.open_time > now_ms:
            refused.append(BadRow(line, f"open_time {candle.open_time} ({_utc(candle.open_time)}) lies in the future"))
        elif candle.open_time + span > now_ms:
            refused.append(
                BadRow(
                    line,
                    f"the candle at {_utc(candle.open_time)} is not closed yet "
                    f"(it closes at {_utc(candle.open_time + span)})",
                )
            )
    first = candles[0]
    stored = _stored_values(conn, first.venue, first.symbol, first.timeframe, first.open_time, candles[-1].open_time)
    for candle, line in zip(candles, lines, strict=True):
        kept = stored.get(candle.open_time)
        mine = tuple(_as_stored(v) for v in (candle.open, candle.high, candle.low, candle.close, candle.volume))
        if kept is not None and mine != kept:
            refused.append(
                BadRow(
                    line,
                    f"conflicts with the stored candle at {_utc(candle.open_time)} "
                    f"(stored o/h/l/c/v {'/'.join(_plain(v) for v in kept)}, "
                    f"file {'/'.join(_plain(v) for v in mine)})",
                )
            )
    return refused


def _utc(ms: int) -> str:
    return f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%d %H:%M} UTC"


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def import_candles_text(
    text: str,
    *,
    venue: str,
    symbol: str,
    timeframe: str,
    source: str = "candles",
    engine: Engine | None = None,
    progress: Progress | None = None,
    now_ms: int | None = None,
) -> LoadReport:
    """Store every candle of the file in one transaction, or none: any refused row (unreadable, off the
    timeframe's boundaries, not closed, in the future, or conflicting with a stored candle) raises
    ImportRefused naming the rows. Candles identical to stored ones are counted as duplicates."""
    check_target(venue, symbol, timeframe)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    frame, lines_of, bad = read_rows(text, source)
    report = LoadReport(venue, symbol, timeframe)
    times = frame["open_time"].to_numpy()
    span = timeframe_ms(timeframe)
    interval = candle_interval_ms(times)
    if interval is not None and interval != span:
        found = next((tf for tf, ms in TIMEFRAME_MS.items() if ms == interval), f"{interval} ms")
        raise LoadError(f"{source}: the file holds {found} candles, not {timeframe}")
    misaligned = times % span != 0 if len(times) else np.array([], dtype=bool)
    for index in np.flatnonzero(misaligned):
        bad.append(BadRow(int(lines_of[index]), f"open_time {int(times[index])} is not on a {timeframe} boundary"))
    frame, lines = frame[~misaligned], [int(n) for n in lines_of[~misaligned]]
    candles = [
        ClosedCandle(
            venue,
            symbol,
            timeframe,
            int(t),
            Decimal(repr(o)),
            Decimal(repr(h)),
            Decimal(repr(low)),
            Decimal(repr(c)),
            Decimal(repr(v)),
        )
        for t, o, h, low, c, v in frame.itertuples(index=False, name=None)
    ]
    engine = engine or get_engine()
    with engine.begin() as conn:
        # One import of a market at a time: the conflict check holds until this transaction commits.
        conn.execute(
            text_sql("SELECT pg_advisory_xact_lock(hashtext(:market))"),
            {"market": f"candles:{venue}:{symbol}:{timeframe}"},
        )
        if candles:
            bad.extend(_refusals(conn, candles, lines, now_ms))
        report.rows = len(candles)
        if bad:
            report.bad_rows = sorted(bad, key=lambda b: b.line)
            raise ImportRefused(source, report)
        report.first, report.last = candles[0].open_time, candles[-1].open_time
        report.gaps = find_gaps(frame["open_time"].to_numpy(), span)
        for start in range(0, len(candles), INSERT_CHUNK):
            report.added += insert_candles(conn, candles[start : start + INSERT_CHUNK], "import")
            if progress:
                progress(min(start + INSERT_CHUNK, len(candles)), len(candles), "rows")
    report.duplicates = report.rows - report.added
    log.info(
        "candles_imported",
        extra={"source": source, **{k: v for k, v in report.as_dict().items() if k not in ("gaps", "bad_rows")}},
    )
    return report


def import_candles_file(
    path: str | Path,
    *,
    venue: str,
    symbol: str | None = None,
    timeframe: str | None = None,
    engine: Engine | None = None,
    progress: Progress | None = None,
) -> LoadReport:
    guessed_symbol, guessed_tf = guess_symbol_timeframe(path)
    symbol, timeframe = symbol or guessed_symbol, timeframe or guessed_tf
    if not symbol or not timeframe:
        raise LoadError(f"{path}: give --symbol and --tf (they cannot be read from the file name)")
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(f"{path}: cannot read file ({getattr(exc, 'strerror', None) or exc})") from None
    return import_candles_text(
        text, venue=venue, symbol=symbol, timeframe=timeframe, source=str(path), engine=engine, progress=progress
    )


# --- download -----------------------------------------------------------------------------------


def download_candles(
    venue: str,
    symbol: str,
    timeframe: str,
    start_ms: int,
    end_ms: int,
    *,
    exchange: Exchange | None = None,
    engine: Engine | None = None,
    client: redis.Redis | None = None,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_retries: int = 8,
    base_url: str | None = None,
) -> LoadReport:
    """Fetch [start_ms, end_ms] page by page into Postgres. Interrupted, it resumes after the last page
    stored (a Redis checkpoint per range); rate limits are waited out, not failed."""
    check_target(venue, symbol, timeframe)
    span = timeframe_ms(timeframe)
    if end_ms < start_ms:
        raise LoadError("the end of the range is before its start")
    start_ms = start_ms + (-start_ms) % span
    client = client or get_redis()
    engine = engine or get_engine()
    exchange = exchange or make_exchange(
        venue, api_key="", api_secret="", base_url=base_url or rest_base_url(venue, get_settings()), redis=client
    )
    key = download_checkpoint(venue, symbol, timeframe, start_ms, end_ms)
    saved = client.get(key)
    cursor = int(saved) + span if saved else start_ms
    report = LoadReport(venue, symbol, timeframe)
    total = max(1, (end_ms - start_ms) // span + 1)
    previous = int(saved) if saved else None
    while cursor <= end_ms:
        page = _fetch_page(exchange, symbol, timeframe, cursor, end_ms, sleep, max_retries)
        # A venue's last kline is the one still forming: only closed candles are stored.
        closed_before = int(time.time() * 1000) - span
        rows = [k for k in page if cursor <= k.open_time_ms <= min(end_ms, closed_before)]
        if not rows:
            break
        candles = [
            ClosedCandle(venue, symbol, timeframe, k.open_time_ms, k.open, k.high, k.low, k.close, k.volume)
            for k in rows
        ]
        for candle in candles:
            if previous is not None and candle.open_time > previous + span:
                report.gaps.append(Gap(previous, candle.open_time, (candle.open_time - previous) // span - 1))
            previous = candle.open_time
        with engine.begin() as conn:
            report.added += insert_candles(conn, candles, "download")
        report.rows += len(candles)
        report.first = report.first if report.first is not None else candles[0].open_time
        report.last = candles[-1].open_time
        client.set(key, candles[-1].open_time, ex=CHECKPOINT_TTL_S)
        cursor = candles[-1].open_time + span
        if progress:
            progress(min(total, (cursor - start_ms) // span), total, "candles")
        if len(page) < KLINE_PAGE:
            break
    report.duplicates = report.rows - report.added
    client.delete(key)  # complete: a later run of the same range starts over (and finds duplicates)
    log.info(
        "candles_downloaded",
        extra={
            "venue": venue,
            "symbol": symbol,
            "timeframe": timeframe,
            "rows": report.rows,
            "added": report.added,
            "gaps": len(report.gaps),
            "resumed": bool(saved),
        },
    )
    return report


def _fetch_page(
    exchange: Exchange,
    symbol: str,
    timeframe: str,
    start: int,
    end: int,
    sleep: Callable[[float], None],
    max_retries: int,
):
    for attempt in range(max_retries + 1):
        try:
            with background():  # a download yields the venue's budget to orders
                return exchange.klines(symbol, timeframe, start_ms=start, end_ms=end, limit=KLINE_PAGE)
        except RateLimited as exc:
            wait = exc.retry_after if exc.retry_after is not None else 1.0
        except Unavailable:
            wait = min(10.0, 0.5 * 2**attempt)
        if attempt == max_retries:
            break
        log.info("candles_download_waiting", extra={"venue": exchange.venue, "symbol": symbol, "wait_s": wait})
        sleep(wait)
    raise LoadError(
        f"{exchange.venue} keeps refusing kline requests (rate limited or unavailable); "
        "run the same command again later: it resumes where it stopped"
    )
