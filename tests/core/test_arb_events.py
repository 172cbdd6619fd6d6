"""The arbitrage engine's events read as sentences: every event arb/ emits has one."""

from __future__ import annotations

import re
from pathlib import Path

from core import arb_events

ARB = Path(__file__).resolve().parents[2] / "arb"


def _emitted() -> set[str]:
    names: set[str] = set()
    for source in ARB.glob("*.py"):
        text = source.read_text()
        names |= set(re.findall(r'emit\(\s*"([a-z_]+)"', text))
        for either, other in re.findall(r'emit\(\s*"([a-z_]+)" if \w+ else "([a-z_]+)"', text):
            names |= {either, other}
    # the intents' outcomes: f"{kind}_executed" / f"{kind}_failed" for entry, exit, rollback, reduce and flatten
    kinds = ("entry", "exit", "rollback", "reduce", "flatten")
    names |= {f"{kind}_{outcome}" for kind in kinds for outcome in ("executed", "failed")}
    return names


def test_every_event_the_engine_emits_has_a_sentence():
    emitted = _emitted()
    assert {"engine_started", "kill_switch", "unhedged_position", "trading_halted"} <= emitted  # the scan works
    assert emitted - set(arb_events.SENTENCES) == set()


def test_a_sentence_carries_the_events_context():
    entry = {"intent_id": 7, "direction": "long_vest_short_paradex", "spread_bps": 31.5, "realized_pnl": 0.42}
    assert arb_events.describe("entry_executed", entry) == (
        "Entered long vest short paradex at a spread of 31.5 bps (intent #7), both legs filled; realised P&L 0.42."
    )
    loss = {"reason": "daily_loss_limit", "loss": 51.2, "limit": 50}
    assert arb_events.describe("kill_switch", loss) == (
        "Kill switch: the day's loss 51.2 reached the limit of 50; no new entries."
    )
    unhealthy = {"reason": "venue_unhealthy:vest"}
    assert arb_events.describe("kill_switch", unhealthy) == "Kill switch: venue unhealthy: vest; no new entries."
    started = {"dry_run": True, "markets": {"vest": "BTC-PERP"}, "size": "0.01"}
    assert arb_events.describe("engine_started", started).startswith("Engine started (dry run) on vest BTC-PERP:")


def test_a_missing_value_reads_as_a_dash_and_an_unknown_event_as_its_words():
    assert arb_events.describe("book_fresh", {}) == "The — order book is fresh again."
    assert arb_events.describe("margin_low", {"venue": "vest", "ratio": 0.12, "pair": "BTC"}) == (
        "Margin low: venue vest, ratio 0.12."
    )
