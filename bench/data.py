"""Where the benches (and the tests) find the shared market data files."""

from __future__ import annotations

from pathlib import Path

from core.infra.config import get_settings


def data_dir() -> Path:
    """The folder of candle CSVs: `data_dir` in config.yaml (ARISTOBOT_DATA_DIR overrides it)."""
    return get_settings().data_dir
