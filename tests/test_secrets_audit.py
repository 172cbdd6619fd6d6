"""The secrets audit fails a run whose logs hold a registered secret, and only such a run: a tiny suite
with the plugin is run in a pytest subprocess of its own, against a log folder of its own."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

TINY_CONFTEST = 'pytest_plugins = ("tests.secrets_audit",)\n'
TINY_TEST = """
import os
from pathlib import Path


def test_uses_a_secret():
    log_dir = Path(os.environ["ARISTOBOT_TEST_LOG_DIR"])
    with open(log_dir / "secrets.txt", "a") as handle:
        handle.write(os.environ["TINY_SECRET"] + "\\n")
    with open(log_dir / "worker.log", "a") as handle:
        handle.write("login attempt\\n" + os.environ["TINY_LOG_LINE"] + "\\n")
"""


def _run_tiny_suite(tmp_path: Path, log_line: str, secret: str, *args: str) -> subprocess.CompletedProcess:
    suite, log_dir = tmp_path / "suite", tmp_path / "logs"
    suite.mkdir()
    log_dir.mkdir()
    (suite / "conftest.py").write_text(TINY_CONFTEST)
    (suite / "test_tiny.py").write_text(TINY_TEST)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ARISTOBOT_TEST_LOG_DIR": str(log_dir),
        "TINY_SECRET": secret,
        "TINY_LOG_LINE": log_line,
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(suite),
            "-c",
            os.devnull,
            *args,
            str(suite),
        ],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# `make test` runs most of the suite on two xdist workers: the controller must report what they found.
ON_ONE_PROCESS_OR_TWO_WORKERS = pytest.mark.parametrize("args", [(), ("-n", "2")], ids=["serial", "xdist"])


@ON_ONE_PROCESS_OR_TWO_WORKERS
def test_a_leaked_secret_fails_the_run(tmp_path, args):
    secret = "fake-" + secrets.token_hex(8)
    result = _run_tiny_suite(tmp_path, f"order sent key={secret}", secret, *args)
    assert "1 passed" in result.stdout  # the test itself passed ...
    assert result.returncode == 1, result.stdout + result.stderr  # ... and the audit failed the run
    assert "secrets audit FAILED" in result.stdout and "worker.log:2" in result.stdout
    assert secret not in result.stdout  # the report names the place, not the secret


@ON_ONE_PROCESS_OR_TWO_WORKERS
def test_a_clean_run_passes(tmp_path, args):
    secret = "fake-" + secrets.token_hex(8)
    result = _run_tiny_suite(tmp_path, "order sent key=***", secret, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no registered secret in any log line" in result.stdout


def test_the_suite_itself_runs_the_audit(request):
    """The plugin is loaded by tests/conftest.py for this very run (a second `pytest_plugins` assignment there
    once replaced it, and the audit silently stopped)."""
    assert request.config.pluginmanager.has_plugin("tests.secrets_audit")
