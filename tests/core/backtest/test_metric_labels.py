"""Every metric a backtest reports has a name in words and a definition read from docs/METRICS.md."""

from __future__ import annotations

from core.backtest import metric_labels
from core.backtest.run_results import METRIC_ORDER


def test_every_reported_metric_has_words_and_a_definition():
    definitions = metric_labels.definitions()
    for key in METRIC_ORDER:
        assert metric_labels.label(key) != key, key
        assert definitions.get(key), f"{key} has no row in docs/METRICS.md"


def test_definitions_read_the_formula_and_when_it_is_undefined():
    assert metric_labels.definition("calmar") == "cagr_pct ÷ |max_drawdown_pct|. Undefined when: no CAGR; no drawdown"
    assert metric_labels.definition("num_trades") == "closed trades, including end_of_data"  # "—": always defined


def test_an_unknown_metric_reads_as_its_words_without_a_definition():
    assert metric_labels.label("median_hold_minutes") == "Median hold minutes"
    assert metric_labels.label("turnover_pct") == "Turnover %"
    assert metric_labels.definition("median_hold_minutes") == ""
