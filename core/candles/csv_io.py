"""Candle CSV reading: our layout and Binance kline dumps, with line-numbered errors.

Our layout has a header ``open_time,open,high,low,close,volume`` (open_time in integer ms UTC).
Binance kline dumps have no header and 12 columns; their open_time is in ms, or in µs for spot
dumps since 2025. Every error names the file line (1-based, header included) that caused it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
BINANCE_KLINE_COLUMNS = 12
# Any open_time above this cannot be milliseconds (it is year 5138): it is microseconds.
_MAX_MS_TIMESTAMP = 10**14
MAX_CANDLE_VALUE = 1e20  # prices and volumes are stored as NUMERIC(38, 12): 26 digits before the point


class CandleFileError(ValueError):
    """A candle file that cannot be used; `line` is the 1-based file line at fault, if one is."""

    def __init__(self, message: str, line: int | None = None, path: str | None = None):
        self.line = line
        self.path = path
        where = f"{path or 'candles'}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Gap:
    """Candles missing between two present ones (times are open times in ms UTC)."""

    last_before_ms: int
    next_after_ms: int
    missing: int

    def as_dict(self) -> dict:
        return {"last_before_ms": self.last_before_ms, "next_after_ms": self.next_after_ms, "missing": self.missing}


def read_candles_csv(path: str | Path) -> pd.DataFrame:
    """Read a candle file into a DataFrame with CANDLE_COLUMNS (int64 ms, float64 prices)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CandleFileError(f"cannot read file ({exc.strerror or exc})", path=str(path)) from exc
    return parse_candles_csv(text, source=str(path))


def parse_candles_csv(text: str, source: str = "candles") -> pd.DataFrame:
    first_line = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    if not first_line:
        raise CandleFileError("no candles (the file is empty)", path=source)
    has_header = not _looks_numeric(first_line.split(",")[0])
    header_lines = 1 if has_header else 0
    body = text.lstrip("\ufeff").split("\n", header_lines)[-1] if header_lines else text.lstrip("\ufeff")
    if not body.strip():
        raise CandleFileError("no candles (only a header)", path=source)
    try:
        raw = pd.read_csv(io.StringIO(body), header=None, dtype=str, skip_blank_lines=False)
    except pd.errors.ParserError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found.group(1)) + header_lines if found else None
        raise CandleFileError(f"malformed row ({exc})".replace("\n", " "), line, source) from exc
    raw = _drop_trailing_blank_rows(raw)
    if raw.empty:
        raise CandleFileError("no candles (only a header)", path=source)
    if has_header:
        names = [c.strip().lower() for c in first_line.split(",")]
        missing = [c for c in CANDLE_COLUMNS if c not in names]
        if missing:
            raise CandleFileError(
                f"header lacks column(s) {', '.join(missing)}; expected {','.join(CANDLE_COLUMNS)}", 1, source
            )
        raw.columns = names + [f"extra_{i}" for i in range(len(raw.columns) - len(names))]
        raw = raw[list(CANDLE_COLUMNS)]
    elif raw.shape[1] in (BINANCE_KLINE_COLUMNS, len(CANDLE_COLUMNS)):
        raw = raw.iloc[:, : len(CANDLE_COLUMNS)]
        raw.columns = list(CANDLE_COLUMNS)
    else:
        raise CandleFileError(
            f"{raw.shape[1]} columns without a header; expected a header {','.join(CANDLE_COLUMNS)} "
            f"or a Binance kline dump ({BINANCE_KLINE_COLUMNS} columns)",
            1,
            source,
        )
    return _typed_candles(raw, header_lines, source)


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _drop_trailing_blank_rows(raw: pd.DataFrame) -> pd.DataFrame:
    blank = raw.isna().all(axis=1).to_numpy()
    end = len(raw)
    while end and blank[end - 1]:
        end -= 1
    return raw.iloc[:end]


def _typed_candles(raw: pd.DataFrame, header_lines: int, source: str) -> pd.DataFrame:
    def line_of(row: int) -> int:
        return row + header_lines + 1

    out = {}
    for name in CANDLE_COLUMNS:
        values = pd.to_numeric(raw[name].str.strip(), errors="coerce").to_numpy(dtype="float64")
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            row = int(bad[0])
            raise CandleFileError(f"{name} is not a finite number ({raw[name].iloc[row]!r})", line_of(row), source)
        out[name] = values
    for name in CANDLE_COLUMNS[1:]:
        bad = np.flatnonzero(np.abs(out[name]) >= MAX_CANDLE_VALUE)
        if bad.size:
            raise CandleFileError(
                f"{name} {raw[name].iloc[int(bad[0])].strip()[:40]} is beyond what a candle holds "
                f"(under {MAX_CANDLE_VALUE:.0e})",
                line_of(int(bad[0])),
                source,
            )
    times = out["open_time"]
    if np.any(np.abs(times) >= _MAX_MS_TIMESTAMP * 1000):
        row = int(np.flatnonzero(np.abs(times) >= _MAX_MS_TIMESTAMP * 1000)[0])
        raise CandleFileError("open_time is not a timestamp in ms or µs", line_of(row), source)
    if np.any(times != np.floor(times)):
        row = int(np.flatnonzero(times != np.floor(times))[0])
        raise CandleFileError("open_time must be an integer timestamp", line_of(row), source)
    times = times.astype("int64")
    if times.max() >= _MAX_MS_TIMESTAMP:
        times = times // 1000
    for name in PRICE_COLUMNS:
        bad = np.flatnonzero(out[name] <= 0)
        if bad.size:
            raise CandleFileError(f"{name} must be positive ({out[name][bad[0]]})", line_of(int(bad[0])), source)
    bad = np.flatnonzero(out["volume"] < 0)
    if bad.size:
        raise CandleFileError("volume must not be negative", line_of(int(bad[0])), source)
    inconsistent = (out["high"] < np.maximum(out["open"], out["close"])) | (
        out["low"] > np.minimum(out["open"], out["close"])
    )
    if inconsistent.any():
        row = int(np.flatnonzero(inconsistent)[0])
        raise CandleFileError("high/low do not contain open and close", line_of(row), source)
    check_sorted(times, line_offset=header_lines + 1, source=source)
    frame = pd.DataFrame({"open_time": times, **{n: out[n] for n in CANDLE_COLUMNS[1:]}})
    return frame


def check_sorted(open_time_ms: np.ndarray, line_offset: int = 1, source: str = "candles") -> None:
    """Raise CandleFileError at the first candle that is not strictly after the one before it."""
    if len(open_time_ms) == 0:
        raise CandleFileError("no candles", path=source)
    step = np.diff(open_time_ms)
    bad = np.flatnonzero(step <= 0)
    if bad.size:
        row = int(bad[0]) + 1
        what = "duplicate" if step[bad[0]] == 0 else "out of order"
        raise CandleFileError(
            f"open_time {int(open_time_ms[row])} is {what} (previous is {int(open_time_ms[row - 1])}); "
            "candles must be sorted by open_time without duplicates",
            row + line_offset,
            source,
        )


def candle_interval_ms(open_time_ms: np.ndarray) -> int | None:
    """The candle interval: the most common step between consecutive open times."""
    if len(open_time_ms) < 2:
        return None
    steps, counts = np.unique(np.diff(open_time_ms), return_counts=True)
    return int(steps[np.argmax(counts)])


def find_gaps(open_time_ms: np.ndarray, interval_ms: int | None = None) -> list[Gap]:
    """Places where candles are missing, given the series' own interval."""
    interval_ms = interval_ms or candle_interval_ms(open_time_ms)
    if not interval_ms:
        return []
    step = np.diff(open_time_ms)
    where = np.flatnonzero(step > interval_ms)
    return [Gap(int(open_time_ms[i]), int(open_time_ms[i + 1]), int(step[i] // interval_ms) - 1) for i in where]
