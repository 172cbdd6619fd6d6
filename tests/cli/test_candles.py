import json
import subprocess
import sys

from tests.conftest import ROOT, process_env

T0 = 1_735_689_600_000


def aristobot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=ROOT, env=process_env(), capture_output=True, text=True, timeout=120
    )


def test_import_refuses_a_file_with_bad_lines_whole_then_imports_it_once_fixed(infra, tmp_path):
    path = tmp_path / "CLIUSDT-5m.csv"
    rows = [f"{T0 + i * 300_000},10,11,9,10.5,3" for i in (0, 1, 2, 3, 6)]
    path.write_text("\n".join(["open_time,open,high,low,close,volume", *rows[:4], "not,a,row", rows[4]]) + "\n")
    refused = aristobot("candles", "import", str(path))
    assert refused.returncode == 1
    assert "nothing imported, 1 row(s) refused, the first at line 6: open_time is not" in refused.stderr
    assert "5 rows, 0 added" in refused.stdout and "  line 6: open_time is not a finite number" in refused.stdout
    as_json = aristobot("candles", "import", str(path), "--json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["bad_rows"][0]["line"] == 6
    path.write_text("\n".join(["open_time,open,high,low,close,volume", *rows]) + "\n")
    first = aristobot("candles", "import", str(path))
    assert first.returncode == 0, first.stderr
    assert "binance CLIUSDT 5m: 5 rows, 5 added, 0 duplicates skipped, 1 gaps (2 missing), 0 bad rows" in first.stdout
    again = json.loads(aristobot("candles", "import", str(path), "--json").stdout)
    assert (again["added"], again["duplicates"], again["bad_rows"]) == (0, 5, [])


def test_download_from_the_simulator_as_json(infra, sim):
    done = aristobot(
        "candles",
        "download",
        "--venue",
        "sim",
        "--symbol",
        "btcusdt",
        "--tf",
        "1h",
        "--from",
        "2025-01-01",
        "--to",
        "2025-01-02",
        "--base-url",
        sim.url,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["rows"], report["added"], report["first"]) == (48, 48, T0)


def test_bad_arguments_exit_with_one_clear_line(infra):
    bad_date = aristobot(
        "candles",
        "download",
        "--venue",
        "sim",
        "--symbol",
        "BTCUSDT",
        "--tf",
        "1m",
        "--from",
        "yesterday",
        "--to",
        "2025-01-02",
    )
    assert bad_date.returncode == 2 and "not a date" in bad_date.stderr
    bad_tf = aristobot("candles", "import", "x.csv", "--symbol", "BTCUSDT", "--tf", "2m")
    assert bad_tf.returncode == 2 and "2m" in bad_tf.stderr
    missing = aristobot("candles", "import", "/nonexistent/BTCUSDT-1m.csv")
    assert missing.returncode == 1 and "cannot read file" in missing.stderr and "Traceback" not in missing.stderr
