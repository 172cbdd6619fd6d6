"""The templates a trader starts from: each validates, loads, runs in the sandbox and trades."""

from __future__ import annotations

import pytest

from core.backtest.engine import run_backtest
from core.strategies.jobs import candles_frame, dry_run
from core.strategies.loader import load_strategy_class
from core.strategies.sandbox import SandboxLimits, run_sandboxed
from core.strategies.templates import get_template, list_templates
from core.strategies.validation import validate_strategy_code
from tests.core.strategies.conftest import read_candle_rows

NAMES = ["sma_cross", "rsi_mean_reversion", "bollinger_breakout", "macd_trend", "ema_trailing"]


def test_catalogue_lists_the_templates():
    templates = list_templates()
    assert [t.name for t in templates] == NAMES
    assert all(t.title and t.description and "class " in t.code for t in templates)
    with pytest.raises(KeyError, match="known: sma_cross"):
        get_template("martingale")


@pytest.mark.parametrize("name", NAMES)
def test_template_validates_loads_and_trades_on_real_candles(name):
    template = get_template(name)
    report = validate_strategy_code(template.code)
    assert report.ok, report.errors
    cls = load_strategy_class(template.code)
    assert cls.__name__ == report.class_name
    rows = read_candle_rows(limit=3000)
    result = dry_run(cls, {"candles": rows})
    assert result["long_entries"] > 0, "a template that never enters teaches nothing"
    if name == "macd_trend":
        assert result["short_entries"] > 0


def test_templates_run_in_the_sandbox(candle_rows):
    limits = SandboxLimits(cpu_seconds=10, wall_seconds=30)
    for template in list_templates():
        result = run_sandboxed(
            template.code, "core.strategies.jobs:evaluate_last", {"candles": candle_rows}, limits=limits
        )
        assert result["candle_time"] == candle_rows[-1][0], template.name


def test_the_trailing_stop_template_exits_by_its_trail_in_a_backtest():
    cls = load_strategy_class(get_template("ema_trailing").code)
    result = run_backtest(cls, candles_frame(read_candle_rows(limit=3000)))
    assert result.status == "ok" and len(result.trades) > 3
    assert {t.exit_reason for t in result.trades[:-1]} == {"trailing_stop"}
