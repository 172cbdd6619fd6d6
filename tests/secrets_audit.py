"""The secrets-in-logs audit, a pytest plugin (tests/conftest.py loads it).

When the session ends, after every fixture is torn down (so the servers' last lines are written), every
log line the run produced (this process and every process it started, all under ARISTOBOT_TEST_LOG_DIR)
is searched for every secret the run registered with `tests.support.remember_secret`. One hit fails the
run, whichever tests were selected and in whatever order they ran.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MIN_SECRET_LENGTH = 6  # shorter strings would match by chance


def find_leaks(log_dir: Path) -> list[str]:
    """`file:line` of every log line holding a registered secret. Raises when the audit would prove
    nothing (no secret registered, no log written)."""
    secrets_file = log_dir / "secrets.txt"
    secrets = (
        {line for line in secrets_file.read_text().splitlines() if len(line) >= MIN_SECRET_LENGTH}
        if secrets_file.exists()
        else set()
    )
    if not secrets:
        raise RuntimeError(f"the run registered no secrets in {secrets_file}: the audit would prove nothing")
    logs = sorted(log_dir.rglob("*.log"))
    if not logs:
        raise RuntimeError(f"no log file under {log_dir}: the audit would prove nothing")
    leaks = []
    for path in logs:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            leaks += [f"{path.relative_to(log_dir)}:{number}" for secret in secrets if secret in line]
    return leaks


LEAKS = pytest.StashKey[list[str]]()


@pytest.hookimpl(trylast=True)  # after pytest's own hook has torn the session fixtures down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.option.collectonly or exitstatus == pytest.ExitCode.INTERRUPTED:
        return
    try:
        leaks = find_leaks(Path(os.environ["ARISTOBOT_TEST_LOG_DIR"]))
    except RuntimeError as exc:
        leaks = [str(exc)]
    session.config.stash[LEAKS] = leaks
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Printed after pytest_sessionfinish above (the terminal reporter prints its summary last)."""
    leaks = config.stash.get(LEAKS, None)
    if leaks:
        terminalreporter.write_sep("=", "secrets audit FAILED", red=True)
        terminalreporter.write_line(f"a secret is in the logs at {leaks[:20]}", red=True)
    elif leaks is not None:
        terminalreporter.write_line("secrets audit: no registered secret in any log line")
