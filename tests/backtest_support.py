"""Helpers for the backtest and strategy tests: real candles into the candles table, strategies via the models,
candle frames built from closes."""

from __future__ import annotations

import csv
import secrets
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from bench.data import data_dir
from core.models import Candle, StrategyRecord, StrategyVersion

DATA_DIR = data_dir()  # `data_dir` of config.yaml, or ARISTOBOT_DATA_DIR
EXAMPLES = Path(__file__).resolve().parents[1] / "core" / "strategies" / "examples"
SMA_CROSS = (EXAMPLES / "sma_cross.py").read_text()
HOUR_MS = 3_600_000
FIRST_1H_MS = 1502942400000  # first open time of BTCUSDT-1h.csv


def read_rows(name: str = "BTCUSDT-1h.csv", limit: int = 2000, skip: int = 0) -> list[list[str]]:
    rows = []
    with open(DATA_DIR / name, newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for i, row in enumerate(reader):
            if i < skip:
                continue
            rows.append(row)
            if len(rows) >= limit:
                break
    return rows


def insert_candles(
    session: Session, rows: list[list[str]], venue: str = "binance", symbol: str = "BTCUSDT", timeframe: str = "1h"
) -> int:
    """Idempotent (the table's key is venue, symbol, timeframe, open time)."""
    values = [
        {
            "venue": venue,
            "symbol": symbol,
            "timeframe": timeframe,
            "open_time": int(r[0]),
            **{k: Decimal(v) for k, v in zip(("open", "high", "low", "close", "volume"), r[1:], strict=True)},
        }
        for r in rows
    ]
    for start in range(0, len(values), 5000):
        session.execute(insert(Candle).values(values[start : start + 5000]).on_conflict_do_nothing())
    session.commit()
    return len(values)


def make_strategy(
    session: Session,
    user_id: int,
    code: str = SMA_CROSS,
    params: dict | None = None,
    valid: bool = True,
    name: str | None = None,
) -> StrategyVersion:
    strategy = StrategyRecord(user_id=user_id, name=name or f"s-{secrets.token_hex(3)}")
    version = StrategyVersion(number=1, code=code, params=params or {}, valid=valid, class_name="SmaCross")
    strategy.versions.append(version)
    session.add(strategy)
    session.commit()
    return version


def failing_strategy(at_candle: int) -> str:
    """A strategy that never trades and divides by zero when deciding at candle `at_candle` (from 1)."""
    return SMA_CROSS.replace(
        "return crossed_above(self.fast, self.slow)",
        f"return 1 / (len(self.data.close) - {at_candle}) > 2",
    )


def candles_from_closes(closes) -> pd.DataFrame:
    closes = np.asarray(closes, dtype="float64")
    opens = np.concatenate([[closes[0]], closes[:-1]])
    return pd.DataFrame(
        {
            "open_time": 1_700_000_000_000 + 60_000 * np.arange(len(closes)),
            "open": opens,
            "high": np.maximum(opens, closes) + 1,
            "low": np.minimum(opens, closes) - 1,
            "close": closes,
            "volume": np.ones(len(closes)),
        }
    )
