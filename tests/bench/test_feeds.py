import json
import subprocess
import sys

from sqlalchemy import text

from core.infra.db import get_engine
from tests.conftest import ROOT, process_env


def test_bench_feeds_reports_throughput_and_latency_and_cleans_up(infra, redis_client):
    done = subprocess.run(
        [sys.executable, "-m", "cli", "bench", "feeds", "--json", "--seconds", "1", "--rate", "1500", "--symbols", "5"],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["sustained"]["messages"] == 1500 and result["offered_msgs_per_s"] == 1500
    assert result["kept_up"] and result["sustained_msgs_per_s"] > 1000
    latency = result["sustained"]["stream_latency_ms"]
    assert 0 <= latency["p50"] <= latency["p99"] <= latency["max"]
    assert result["unpaced"]["msgs_per_s"] > 0
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM candles WHERE venue = 'bench'")).scalar() == 0
    assert list(redis_client.scan_iter("*:candles:bench:*")) == []
