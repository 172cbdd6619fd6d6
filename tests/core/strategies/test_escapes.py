"""The escape corpus: every attempt is refused by validation or stopped by the sandbox, safely.

Attempts marked `stage: refused` must be refused on save, and are then ALSO run in the real sandbox
with our static checks switched off, to prove the run-time layers (RestrictedPython guards, import
hook, audit hook, rlimits, wall clock) hold on their own. Attempts marked `stage: runtime` pass the
static checks by design and must be stopped at run time.
"""

from __future__ import annotations

import json
import os
import secrets
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.strategies.sandbox import SandboxError, SandboxLimits, run_sandboxed
from core.strategies.validation import validate_strategy_code
from tests.support import remember_secret

CORPUS_DIR = Path(__file__).parent / "escape_corpus"
CORPUS = sorted(CORPUS_DIR.glob("*.py"))
LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=6, memory_mb=700)
PRELUDE = """import math
import numpy
import pandas
import statistics
import ta
from core.strategies import Strategy
"""
SECRET_ENV = "ARISTOBOT_ESCAPE_TEST_SECRET"
SAFE_FAILURES = {
    "StrategyCodeError", "ForbiddenOperation", "NameError", "Timeout", "CpuTimeLimit", "MemoryLimit",
    "RecursionLimit", "PermissionError", "StrategyError", "ValueError",
}  # fmt: skip


@dataclass(frozen=True)
class Attempt:
    name: str
    description: str
    stage: str
    where: str
    expect: frozenset[str]
    snippet: str

    def code(self, substitutions: dict[str, str]) -> str:
        snippet = self.snippet
        for placeholder, value in substitutions.items():
            snippet = snippet.replace(placeholder, value)
        if self.where == "module":
            body = snippet
            if "(Strategy)" not in snippet:
                body += "\n\nclass Attempt(Strategy):\n    pass\n"
            return PRELUDE + "\n" + body
        return PRELUDE + "\n\nclass Attempt(Strategy):\n    def init(self):\n" + textwrap.indent(snippet, " " * 8)

    @property
    def first_snippet_line(self) -> int:
        return PRELUDE.count("\n") + (2 if self.where == "module" else 5)


def parse_attempt(path: Path) -> Attempt:
    header, lines = {}, path.read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("# "):
        key, _, value = lines.pop(0)[2:].partition(":")
        header[key.strip()] = value.strip()
    return Attempt(
        name=path.stem,
        description=header["attempt"],
        stage=header["stage"],
        where=header["where"],
        expect=frozenset(t.strip() for t in header["expect"].split(",")),
        snippet="".join(lines),
    )


def test_corpus_covers_the_escape_classes():
    attempts = [parse_attempt(p) for p in CORPUS]
    assert len(attempts) >= 70
    assert all(a.stage in ("refused", "runtime") and a.where in ("init", "module") for a in attempts)
    assert all(a.expect <= SAFE_FAILURES for a in attempts), "every expected outcome is a safe failure"
    names = " ".join(a.name for a in attempts)
    escape_classes = ("import", "dunder", "format", "frame", "memory", "loop", "env", "open", "socket", "fork",
                      "pandas", "sys_modules", "ctypes", "cffi", "numpy")  # fmt: skip
    for escape_class in escape_classes:
        assert escape_class in names, f"no attempt of class {escape_class!r}"


@pytest.fixture()
def targets(tmp_path, monkeypatch):
    """A writable marker path and a readable secret: only the sandbox layers stand in the way."""
    tmp_path.chmod(0o777)
    secret_file = tmp_path / "secret.txt"
    secret_text = remember_secret("file-secret-" + secrets.token_hex(12))
    secret_file.write_text(secret_text)
    secret_file.chmod(0o644)
    env_secret = remember_secret("env-secret-" + secrets.token_hex(12))
    monkeypatch.setenv(SECRET_ENV, env_secret)
    return {
        "marker": tmp_path / "pwned",
        "substitutions": {
            "@MARKER@": str(tmp_path / "pwned"),
            "@SECRET_FILE@": str(secret_file),
            "@SECRET_ENV@": SECRET_ENV,
        },
        "secrets": (secret_text, env_secret),
    }


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_escape_attempt_fails_safely(path, targets, candle_rows):
    attempt = parse_attempt(path)
    code = attempt.code(targets["substitutions"])

    report = validate_strategy_code(code)
    if attempt.stage == "refused":
        assert not report.ok, f"validation let through: {attempt.description}"
        assert all(isinstance(e["line"], int) and e["message"] for e in report.errors)
        assert report.errors[0]["line"] >= attempt.first_snippet_line
    else:
        assert report.ok, report.errors

    with pytest.raises(SandboxError) as info:
        run_sandboxed(
            code,
            "core.strategies.jobs:evaluate_last",
            {"candles": candle_rows[:60]},
            limits=LIMITS,
            _static_checks=attempt.stage == "runtime",
        )
    error = info.value.error
    assert error["type"] in attempt.expect, f"{attempt.name}: {error}"
    assert not targets["marker"].exists(), f"{attempt.name} wrote a file"
    reported = json.dumps(error) + str(info.value)
    for secret in targets["secrets"]:
        assert secret not in reported, f"{attempt.name} leaked a secret"
    assert len(error["message"]) <= 2000


def test_refused_code_is_refused_again_inside_the_sandbox(candle_rows):
    """The child validates before loading, so code that skipped the save-time check is still refused."""
    attempt = parse_attempt(CORPUS_DIR / "import_os.py")
    code = attempt.code({"@MARKER@": "/nonexistent/x"})
    with pytest.raises(SandboxError) as info:
        run_sandboxed(code, "core.strategies.jobs:describe", {}, limits=LIMITS)
    assert info.value.error["type"] == "StrategyCodeError"
    assert info.value.error["line"] == attempt.first_snippet_line
    assert "import of 'os' is not allowed" in info.value.error["message"]


def test_sandbox_still_works_after_the_corpus(candle_rows):
    """The parent survived bombs and kills: a normal strategy runs, and no sandbox child is left over."""
    from core.strategies.templates import get_template

    result = run_sandboxed(get_template("sma_cross").code, "core.strategies.jobs:describe", {}, limits=LIMITS)
    assert result["class_name"] == "SmaCross"
    leftovers = [pid for pid in os.listdir("/proc") if pid.isdigit() and _is_our_sandbox(pid)]
    assert leftovers == []


def _is_our_sandbox(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read()
        with open(f"/proc/{pid}/status") as handle:
            ppid = next(line.split()[1] for line in handle if line.startswith("PPid:"))
    except (OSError, StopIteration):
        return False
    return b"sandbox_child" in cmdline and int(ppid) == os.getpid()
