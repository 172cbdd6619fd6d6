"""Fixtures for the strategy tests: real candles from the configured data folder (`data_dir`)."""

from __future__ import annotations

import csv

import pytest

from bench.data import data_dir

DATA_DIR = data_dir()  # `data_dir` of config.yaml, or ARISTOBOT_DATA_DIR


def read_candle_rows(name: str = "BTCUSDT-1h.csv", limit: int = 600) -> list[list]:
    """The first `limit` candles of a shared CSV as payload rows [open_time, o, h, l, c, v]."""
    rows = []
    with open(DATA_DIR / name, newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            rows.append([int(row[0]), *(float(value) for value in row[1:])])
            if len(rows) >= limit:
                break
    return rows


@pytest.fixture(scope="session")
def candle_rows() -> list[list]:
    return read_candle_rows()
