"""Where the benches (and the tests) find the shared market data files."""

from __future__ import annotations

import os
from pathlib import Path

from core.config import ROOT


def data_dir() -> Path:
    """ARISTOBOT_DATA_DIR, else ../shared/data relative to the repository root."""
    configured = os.environ.get("ARISTOBOT_DATA_DIR")
    if configured:
        return Path(configured)
    return ROOT.parent / "shared" / "data"
