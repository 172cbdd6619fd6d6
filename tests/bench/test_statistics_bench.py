"""`aristobot bench statistics` at a small size: it seeds the bench trader once and reuses it, and its
figures are the ones BENCHMARKS.md records, with sane values (no timing is asserted)."""

from __future__ import annotations

import json
from dataclasses import asdict

from click.testing import CliRunner

from bench.statistics import run
from cli.bench import bench_group
from tests.support import free_port

KEYS = {
    "fills",
    "round_trips",
    "books",
    "seeded_now",
    "ledger_rebuild_s",
    "ledger_rebuild_cpu_s",
    "page_p50_ms",
    "page_p99_ms",
    "page_first_ms",
    "page_cpu_ms_mean",
    "page_after_new_fill_ms",
    "meets_targets",
}


def test_the_bench_seeds_once_then_reuses_the_trader_and_reports_sane_figures(infra):
    url = f"http://127.0.0.1:{free_port()}"  # no simulator: open positions show "no price"
    first = asdict(run(url, fills=3000, connections=5, bots=20, views=4))
    assert first.keys() >= KEYS
    assert first["seeded_now"] and first["fills"] == 3000 and first["books"] >= 20
    assert 0 < first["round_trips"] < first["fills"]
    assert first["ledger_load_s"] > 0 and 0 < first["ledger_match_s"] <= first["ledger_rebuild_s"]
    assert 0 < first["page_p50_ms"] <= first["page_p99_ms"] and first["page_views"] == 4
    again = asdict(run(url, fills=3000, connections=5, bots=20, views=2))
    assert not again["seeded_now"] and again["round_trips"] == first["round_trips"]
    resized = CliRunner().invoke(bench_group, ["statistics", "--fills", "2000", "--views", "2", "--json"])
    assert resized.exit_code == 0, resized.output
    figures = json.loads(resized.output)
    assert figures["seeded_now"] and figures["fills"] == 2000 and figures.keys() >= KEYS
