"""The benchmark's generated stream is valid wire data and the bench reports what it measures."""

import json
import subprocess
import sys

import pytest

from arb.config import parse_arb_config
from arb.engine import ArbEngine
from bench.arb import apply_frame, bench_update_to_decision, generate_stream
from core.exchanges.perp import paradex, vest
from tests.conftest import ROOT, process_env


def test_generated_stream_is_valid_venue_frames_with_consecutive_sequence_numbers():
    frames = generate_stream(400)
    seqs = []
    for venue, raw in frames:
        if venue == "vest":
            symbol, bids, asks = vest.parse_depth_frame(raw)
            assert symbol == "BTC-PERP" and len(bids) == len(asks) == 10
        else:
            frame = paradex.parse_book_frame(raw)
            seqs.append(frame["seq"])
            assert frame["snapshot"] == (frame["seq"] == 1)
    assert seqs == list(range(1, len(seqs) + 1))
    engine = ArbEngine(parse_arb_config({"pair": "bench-test"}), {}, None)
    for venue, raw in frames:  # the real books accept the whole stream: no gap, never crossed
        apply_frame(engine, venue, raw)
    assert all(book.valid for book in engine.books.values())


def test_update_to_decision_measures_every_frame_and_takes_decisions():
    result = bench_update_to_decision(1200)
    assert result["n"] == 1000 and result["decisions"] > 0
    assert 0 < result["p50"] <= result["p99"] <= result["max"]
    assert 0 < result["cpu"]["p50"] <= result["cpu"]["p99"]


def test_update_to_decision_interleaves_the_updates_of_every_pair():
    result = bench_update_to_decision(2400, pairs=3)
    assert (result["n"], result["pairs"]) == (1800, 3) and result["decisions"] > 0
    assert 0 < result["p50"] <= result["p99"] <= result["max"]


@pytest.mark.slow  # runs the whole bench with three pairs in one engine, against its own simulators
def test_bench_command_runs_several_pairs(infra):
    out = subprocess.run(
        [sys.executable, "-m", "bench.arb", "--json", "--pairs", "3", "--updates", "1500", "--trades", "12"],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    sent, updates = result["detect_to_both_sent_us"], result["update_to_decision_us"]
    assert (sent["n"], sent["pairs"], updates["pairs"], updates["n"]) == (12, 3, 3, 900) and sent["p50"] > 0


@pytest.mark.slow  # starts one more `python -m arb` beside the bench's engine
def test_bench_command_can_run_the_other_pair_in_its_own_process(infra):
    out = subprocess.run(
        [sys.executable, "-m", "bench.arb", "--json", "--pairs", "2", "--process-per-pair", "--updates", "800"]
        + ["--trades", "6"],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    sent = json.loads(out.stdout.strip().splitlines()[-1])["detect_to_both_sent_us"]
    assert (sent["n"], sent["pairs"], sent["layout"]) == (6, 2, "process per pair") and sent["p50"] > 0


def test_a_pair_count_the_simulators_cannot_serve_is_refused():
    out = subprocess.run(
        [sys.executable, "-m", "bench.arb", "--json", "--pairs", "11"],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "--pairs" in out.stderr and out.stdout == ""


@pytest.mark.slow  # runs the whole bench in a subprocess, with its own simulators
def test_bench_command_prints_json_with_both_latencies(infra, tmp_path):
    doc = tmp_path / "arb.md"
    out = subprocess.run(
        [sys.executable, "-m", "bench.arb", "--json", "--updates", "1000", "--trades", "10", "--markdown", str(doc)],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["detect_to_both_sent_us"]["n"] == 10 and result["detect_to_both_sent_us"]["p50"] > 0
    assert result["update_to_decision_us"]["n"] == 800
    assert "detection-to-both-orders-sent" in doc.read_text()
