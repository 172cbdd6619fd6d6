"""Runs last: every log line the suite produced (this process and every process it started) is
searched for every secret the suite used. One hit fails the suite."""

import os
from pathlib import Path


def test_no_secret_in_any_log_line():
    log_dir = Path(os.environ["ARISTOBOT_TEST_LOG_DIR"])
    secrets = {line for line in (log_dir / "secrets.txt").read_text().splitlines() if len(line) >= 6}
    assert secrets, "the suite registered no secrets: the audit would prove nothing"
    logs = [path for path in log_dir.rglob("*.log")]
    assert logs, "no log files were produced"
    leaks = []
    for path in logs:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            leaks += [f"{path.name}:{number}" for secret in secrets if secret in line]
    assert not leaks, f"secrets found in logs at {leaks[:20]}"
