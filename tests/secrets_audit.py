"""The secrets-in-logs audit, a pytest plugin (tests/conftest.py loads it).

When the session ends, after every fixture is torn down (so the servers' last lines are written), every
log line the run produced (this process and every process it started, all under ARISTOBOT_TEST_LOG_DIR)
is searched for every secret the run registered with `tests.support.remember_secret`. One hit fails the
run, whichever tests were selected and in whatever order they ran.

Under pytest-xdist (`make test` runs most of the suite on two workers) each worker is a session of its own,
with its own servers and log folder: each audits its own logs and hands the result to the controller, which
fails the run on any worker's leak, and on a worker that handed no result (the audit would prove nothing).
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
TESTS_RUN = pytest.StashKey[int]()
WORKER_AUDITS = pytest.StashKey[dict[str, dict | None]]()
WORKER_OUTPUT_KEY = "secrets_audit"


def _is_xdist_controller(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_runtest_setup(item: pytest.Item) -> None:
    item.config.stash[TESTS_RUN] = item.config.stash.get(TESTS_RUN, 0) + 1


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist, in the controller: a worker finished; keep its audit (None: it ended before auditing)."""
    node.config.stash.setdefault(WORKER_AUDITS, {})[node.gateway.id] = node.workeroutput.get(WORKER_OUTPUT_KEY)


def _controller_leaks(config: pytest.Config) -> list[str]:
    audits = config.stash.get(WORKER_AUDITS, {})
    leaks = [f"{worker}: no audit (the worker ended early)" for worker, audit in audits.items() if audit is None]
    done = {worker: audit for worker, audit in audits.items() if audit is not None and audit["ran"]}
    if not done and not leaks:
        return ["no xdist worker ran a test and audited its logs: the audit would prove nothing"]
    for worker, audit in sorted(done.items()):
        leaks += [f"{worker}: {leak}" for leak in audit["leaks"]]
    return leaks


def _own_leaks() -> list[str]:
    try:
        return find_leaks(Path(os.environ["ARISTOBOT_TEST_LOG_DIR"]))
    except RuntimeError as exc:
        return [str(exc)]


@pytest.hookimpl(trylast=True)  # after pytest's own hook has torn the session fixtures down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if config.option.collectonly or exitstatus == pytest.ExitCode.INTERRUPTED:
        return
    if hasattr(config, "workerinput"):  # an xdist worker: the controller judges and reports
        ran = config.stash.get(TESTS_RUN, 0)
        config.workeroutput[WORKER_OUTPUT_KEY] = {"ran": ran, "leaks": _own_leaks() if ran else []}
        return
    leaks = _controller_leaks(config) if _is_xdist_controller(config) else _own_leaks()
    config.stash[LEAKS] = leaks
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
