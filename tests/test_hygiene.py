"""The suite's own rules, read from its source: every test can fail, no assertion is a tautology, and no
assertion puts an upper bound on a measured duration (speed belongs in the benches: a timed assertion
flakes on a loaded machine and proves nothing about behaviour)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
TIMERS = {"monotonic", "perf_counter", "time", "monotonic_ns", "perf_counter_ns"}


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text())) for path in sorted(TESTS.rglob("test_*.py"))]


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _checks_something(function: ast.AST) -> bool:
    """An assert, pytest.raises/warns/fail, or a helper named assert_*/expect_* (Playwright's expect)."""
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            name = _called_name(node)
            if name in {"raises", "warns", "fail", "expect"} or name.lstrip("_").startswith(("assert", "expect")):
                return True
    return False


def _reads_a_clock(node: ast.AST, durations: set[str]) -> bool:
    return any(
        (isinstance(n, ast.Call) and _called_name(n) in TIMERS) or (isinstance(n, ast.Name) and n.id in durations)
        for n in ast.walk(node)
    )


def _is_duration(node: ast.AST, durations: set[str]) -> bool:
    """`clock() - start` or a name assigned one."""
    if isinstance(node, ast.Name):
        return node.id in durations
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and _reads_a_clock(node, durations)


def silent_tests(tree: ast.Module) -> list[ast.AST]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test")
        and not _checks_something(node)
    ]


def tautologies(tree: ast.Module) -> list[ast.Assert]:
    """`assert True`, `assert x == x`, `assert ... or True`."""
    found = []
    for node in (n for n in ast.walk(tree) if isinstance(n, ast.Assert)):
        test = node.test
        constant = isinstance(test, ast.Constant) and bool(test.value)
        same_sides = (
            isinstance(test, ast.Compare)
            and len(test.comparators) == 1
            and isinstance(test.ops[0], ast.Eq | ast.Is)
            and ast.dump(test.left) == ast.dump(test.comparators[0])
        )
        or_true = (
            isinstance(test, ast.BoolOp)
            and isinstance(test.op, ast.Or)
            and any(isinstance(v, ast.Constant) and bool(v.value) for v in test.values)
        )
        if constant or same_sides or or_true:
            found.append(node)
    return found


def duration_upper_bounds(tree: ast.Module) -> list[ast.Assert]:
    """Asserts like `clock() - started < 1`, `elapsed <= 2`, `3 > elapsed`. Lower bounds (it did wait) and
    wait-loop deadlines (`clock() < deadline`) are fine."""
    durations = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and _is_duration(node.value, set())
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found = []
    for node in (n for n in ast.walk(tree) if isinstance(n, ast.Assert)):
        for compare in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
            sides = [compare.left, *compare.comparators]
            if any(
                (isinstance(op, ast.Lt | ast.LtE) and _is_duration(smaller, durations))
                or (isinstance(op, ast.Gt | ast.GtE) and _is_duration(larger, durations))
                for op, smaller, larger in zip(compare.ops, sides[:-1], sides[1:], strict=True)
            ):
                found.append(node)
                break
    return found


def _where(rule) -> list[str]:
    return [f"{path.relative_to(TESTS)}:{node.lineno}" for path, tree in _modules() for node in rule(tree)]


def test_every_test_checks_something():
    assert _where(silent_tests) == []


def test_no_assertion_is_a_tautology():
    assert _where(tautologies) == []


def test_no_assertion_bounds_a_duration_from_above():
    assert _where(duration_upper_bounds) == []


def test_the_rules_catch_what_they_are_for():
    """Each rule flags a sample of what it forbids, so an empty result above means something."""
    sample = ast.parse(
        "def test_a():\n    x = 1\n\n"
        "def test_b():\n    assert True\n    assert x == x\n    assert ok or True\n    assert x == y\n\n"
        "def test_c():\n    started = time.monotonic()\n    elapsed = time.monotonic() - started\n"
        "    assert elapsed < 1\n    assert time.perf_counter() - started <= 2\n    assert 3 > elapsed\n"
        "    assert elapsed >= 0.3\n    assert time.monotonic() < deadline\n"
    )
    assert [node.name for node in silent_tests(sample)] == ["test_a"]
    assert [node.lineno for node in tautologies(sample)] == [5, 6, 7]
    assert [node.lineno for node in duration_upper_bounds(sample)] == [13, 14, 15]
