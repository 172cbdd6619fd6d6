"""The real sandbox process: isolation, structured errors for every bad input, the warm child."""

from __future__ import annotations

import os
import signal

import pytest

from core.strategies.sandbox import SandboxError, SandboxLimits, WarmSandbox, check_decision, run_sandboxed
from core.strategies.templates import get_template

LIMITS = SandboxLimits(cpu_seconds=3, wall_seconds=8, memory_mb=700)
SMA = get_template("sma_cross").code
HEADER = "import math\nfrom core.strategies import Strategy\n\n\nclass Bad(Strategy):\n"
FIRST_BODY_LINE = HEADER.count("\n") + 1


def bad_strategy(**methods: str) -> str:
    """A strategy whose methods return the given expressions (one line each, in order)."""
    body = "".join(f"    def {name}(self):\n        {expression}\n" for name, expression in methods.items())
    return HEADER + body


def failure(code: str, job: str = "core.strategies.jobs:dry_run", payload: dict | None = None) -> dict:
    with pytest.raises(SandboxError) as info:
        run_sandboxed(code, job, payload or {}, limits=LIMITS)
    return info.value.error


def test_runs_a_template_and_returns_plain_data(candle_rows):
    result = run_sandboxed(SMA, "core.strategies.jobs:dry_run", {"candles": candle_rows}, limits=LIMITS)
    assert result["candles"] == len(candle_rows) and result["long_entries"] > 0


def test_child_sees_no_secret_and_runs_unprivileged(monkeypatch):
    from tests.support import remember_secret

    monkeypatch.setenv("ARISTOBOT_SANDBOX_TEST_KEY", remember_secret("sandbox-secret-value-123"))
    report = run_sandboxed(SMA, "core.strategies.jobs:sandbox_report", {}, limits=LIMITS)
    assert "ARISTOBOT_SANDBOX_TEST_KEY" not in report["environment"]
    assert set(report["environment"]) <= {
        "PATH",
        "LANG",
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "PYTHONHASHSEED",
        "PWD",
    }
    assert report["pid"] == 2, "pid 2 of its own pid namespace (bwrap is pid 1)"
    assert report["cwd"] == "/" and report["uid"] == 65534


def test_jobs_outside_core_are_refused():
    for job in ("os:system", "core.strategies.jobs", "core.strategies.jobs:_private", "tests.x:y"):
        with pytest.raises(ValueError):
            run_sandboxed(SMA, job, {})


def test_syntax_error_is_reported_with_its_line():
    code = SMA.replace("def should_short(self) -> bool:", "def should_short(self) -> bool")
    error = failure(code)
    assert error["type"] == "StrategyCodeError"
    assert error["line"] == code.splitlines().index("    def should_short(self) -> bool") + 1
    assert "syntax error" in error["message"]


def test_forbidden_code_is_reported_with_its_line():
    error = failure("import os\n" + SMA)
    assert (error["type"], error["line"]) == ("StrategyCodeError", 1)


@pytest.mark.parametrize(
    ("methods", "method", "fragment"),
    [
        ({"should_long": "return True", "position_size": "return math.nan"}, "position_size", "nan"),
        ({"should_long": "return True", "stop_loss": "return -5.0"}, "stop_loss", "positive price"),
        ({"should_long": "return 'yes'"}, "should_long", "True or False"),
        ({"should_long": "return True", "take_profit": "return 'high'"}, "take_profit", "price or None"),
        ({"should_long": "return True", "position_size": "return [1]"}, "position_size", "number"),
        ({"should_long": "return True", "stop_loss": "return math.nan"}, "stop_loss", "positive price"),
        ({"should_long": "return True", "position_size": "return -0.5"}, "position_size", "(0, 1]"),
    ],
    ids=["nan-size", "negative-price", "string-bool", "string-price", "list-size", "nan-stop", "negative-size"],
)
def test_nonsense_answers_give_a_clear_error(methods, method, fragment, candle_rows):
    error = failure(bad_strategy(**methods), payload={"candles": candle_rows[:50]})
    assert error["type"] == "StrategyOutputError"
    assert method in error["message"] and fragment in error["message"]
    assert error["candle_time"] == candle_rows[0][0], "fails on the first candle asked"


def test_exception_on_the_500th_candle_names_line_and_candle(candle_rows):
    code = bad_strategy(should_long="return 1 / (len(self.data.close) - 500) > 1")
    error = failure(code, payload={"candles": candle_rows})
    assert error["type"] == "ZeroDivisionError"
    assert error["line"] == FIRST_BODY_LINE + 1
    assert error["candle_time"] == candle_rows[499][0]
    assert "should_long()" in error["message"]


def test_strategy_that_never_returns_is_stopped(candle_rows):
    error = failure(bad_strategy(should_long="while True: pass"), payload={"candles": candle_rows[:50]})
    assert error["type"] in ("CpuTimeLimit", "Timeout")


@pytest.mark.parametrize("method", ["init", "should_long", "stop_loss"])
def test_a_phase_that_never_returns_is_stopped_with_its_name_and_line(candle_rows, method):
    limits = SandboxLimits(cpu_seconds=60, wall_seconds=60, memory_mb=700, phase_seconds=1.5)
    methods = {"should_long": "return True"} if method == "stop_loss" else {}
    code = bad_strategy(**methods, **{method: "while True: pass"})
    with pytest.raises(SandboxError) as info:
        run_sandboxed(code, "core.strategies.jobs:dry_run", {"candles": candle_rows[:50]}, limits=limits)
    error = info.value.error
    assert error["type"] == "Timeout"
    assert error["message"] == f"the strategy did not finish `{method}` within 1.5 s"  # init: +50 x 50 µs
    assert error["line"] == code.splitlines().index("        while True: pass") + 1
    assert f"(line {error['line']})" in str(info.value)


def test_a_module_body_that_never_ends_is_stopped_while_loading():
    limits = SandboxLimits(cpu_seconds=60, wall_seconds=60, memory_mb=700, phase_seconds=1)
    code = "while True:\n    pass\n" + SMA  # refused on save: this is the run-time layer alone
    with pytest.raises(SandboxError) as info:
        run_sandboxed(code, "core.strategies.jobs:describe", {}, limits=limits, _static_checks=False)
    assert info.value.error["type"] == "Timeout" and info.value.error["line"] in (1, 2)
    assert info.value.error["message"] == "the strategy did not finish `loading` within 1 s"


def test_a_phase_timeout_that_user_code_catches_is_raised_again(candle_rows):
    limits = SandboxLimits(cpu_seconds=60, wall_seconds=60, memory_mb=700, phase_seconds=1)
    code = bad_strategy(
        init="while True:\n            try:\n                while True: pass\n"
        "            except BaseException:\n                pass"
    )
    with pytest.raises(SandboxError) as info:
        run_sandboxed(code, "core.strategies.jobs:dry_run", {"candles": candle_rows[:50]}, limits=limits)
    assert info.value.error["type"] in ("Timeout", "ForbiddenOperation")


def test_init_budget_grows_with_the_candles():
    from core.strategies.phase_timer import PhaseTimer

    timer = PhaseTimer(5, 0.00005)
    assert timer.for_candles(0).init_budget == 5
    assert timer.for_candles(1_000_000).init_budget == 55
    limits = SandboxLimits(wall_seconds=120, seconds_per_candle=0.001)
    assert limits.call_seconds(limits.wall_seconds, {"candles": {"open_time": [0] * 1000}}) == 121


def test_wall_clock_timeout_when_cpu_is_not_the_limit(candle_rows):
    limits = SandboxLimits(cpu_seconds=60, wall_seconds=1.5, memory_mb=700)
    with pytest.raises(SandboxError) as info:
        run_sandboxed(
            bad_strategy(should_long="while True: pass"),
            "core.strategies.jobs:dry_run",
            {"candles": candle_rows[:50]},
            limits=limits,
        )
    assert info.value.error["type"] == "Timeout"
    assert "1.5 s" in info.value.error["message"]


def test_memory_limit_is_a_structured_error(candle_rows):
    error = failure(bad_strategy(init="self.hog = [0] * (10 ** 10)"), payload={"candles": candle_rows[:50]})
    assert error["type"] == "MemoryLimit" and "700 MB" in error["message"]
    assert error["line"] == FIRST_BODY_LINE + 1


@pytest.mark.parametrize(
    ("expression", "kind", "fragment"),
    [
        ("return self.should_long()", "RecursionLimit", "recursed too deeply"),
        ("self.hog = [0] * (10 ** 10)", "MemoryLimit", "700 MB"),
    ],
    ids=["endless-recursion", "unbounded-allocation"],
)
def test_a_per_candle_bomb_names_the_method_the_candle_and_the_line(candle_rows, expression, kind, fragment):
    error = failure(bad_strategy(should_long=expression), payload={"candles": candle_rows[:50]})
    assert error["type"] == kind and fragment in error["message"]
    assert error["message"].startswith("should_long() at candle ")
    assert error["candle_time"] == candle_rows[0][0] and error["line"] == FIRST_BODY_LINE + 1


def test_the_issue_example_runs_as_a_bot_tick(candle_rows):
    """Issue 21's breakout with `self.streak += 1`, asked for a decision the way a live bot asks."""
    from bench.backtest import BREAKOUT_STREAK_PATH

    with WarmSandbox(BREAKOUT_STREAK_PATH.read_text(), limits=LIMITS) as sandbox:
        decisions = [sandbox.decide(candle_rows[: 100 + k]) for k in range(3)]
    assert [d["candle_time"] for d in decisions] == [candle_rows[99 + k][0] for k in range(3)]
    assert all(isinstance(d["exit"], bool) and d["enter"] in (None, "long") for d in decisions)
    assert sandbox.starts == 1


def test_malformed_payload_is_reported():
    error = failure(SMA, payload={"candles": [[1, 2]]})
    assert error["type"] == "ValueError" and "each candle" in error["message"]


def test_warm_sandbox_serves_every_tick_from_one_process(candle_rows):
    with WarmSandbox(SMA, limits=LIMITS) as warm:
        warm.start()
        assert {
            "bubblewrap namespaces",
            "seccomp",
            "seccomp: no exec, no fork",
            "rlimits",
            "audit hook",
            "clean environment",
        } <= set(warm.layers)
        for end in range(300, 320):
            result = warm.call("core.strategies.jobs:evaluate_last", {"candles": candle_rows[end - 300 : end]})
            assert result["candle_time"] == candle_rows[end - 1][0]
        assert warm.starts == 1  # one process started for 20 ticks: no cold start per candle


def test_warm_sandbox_restarts_after_a_crash_and_a_timeout(candle_rows):
    code = bad_strategy(should_long="while self.params['hang']: pass\n        return False").replace(
        "class Bad(Strategy):\n", "class Bad(Strategy):\n    params = {'hang': False}\n"
    )
    payload = {"candles": candle_rows[:60]}
    limits = SandboxLimits(cpu_seconds=30, wall_seconds=2, memory_mb=700)
    with WarmSandbox(code, limits=limits) as warm:
        assert warm.call("core.strategies.jobs:evaluate_last", payload)["enter"] is None
        child = warm._child.proc
        os.kill(child.pid, signal.SIGKILL)  # a crash between two ticks
        child.wait(timeout=10)
        assert warm.call("core.strategies.jobs:evaluate_last", payload)["enter"] is None
        assert warm.starts == 2
        with pytest.raises(SandboxError) as info:
            warm.call("core.strategies.jobs:evaluate_last", {**payload, "params": {"hang": True}})
        assert info.value.error["type"] == "Timeout"
        assert warm.call("core.strategies.jobs:evaluate_last", payload)["enter"] is None
        assert warm.starts == 3
    with WarmSandbox(
        code, limits=SandboxLimits(cpu_seconds=30, wall_seconds=10, memory_mb=700, phase_seconds=1)
    ) as warm:
        with pytest.raises(SandboxError) as info:  # the child's own phase budget, not the parent's clock
            warm.call("core.strategies.jobs:evaluate_last", {**payload, "params": {"hang": True}})
        assert "did not finish `should_long` within 1 s" in info.value.error["message"]
        assert warm.call("core.strategies.jobs:evaluate_last", payload)["enter"] is None
        assert warm.starts == 2, "a phase timeout replaces the child: library state may be half-updated"
    assert "stopped" in repr(warm)


def test_warm_sandbox_with_bad_code_fails_on_start():
    with pytest.raises(SandboxError) as info:
        WarmSandbox("import os\n" + SMA, limits=LIMITS).start()
    assert info.value.error["type"] == "StrategyCodeError"


def test_warm_decide_checks_the_answer_on_the_parent_side(candle_rows):
    with WarmSandbox(SMA, limits=LIMITS) as warm:
        decision = warm.decide(candle_rows[:200], params={"fast": 5})
    assert decision["candle_time"] == candle_rows[199][0] and isinstance(decision["exit"], bool)


@pytest.mark.parametrize(
    "answer",
    [
        None,
        {"exit": "no", "candle_time": 1},
        {"exit": False, "candle_time": 1, "enter": "sideways", "size_fraction": 1.0},
        {"exit": False, "candle_time": 1, "enter": "long", "size_fraction": float("nan")},
        {"exit": False, "candle_time": 1, "enter": "long", "size_fraction": 50.0},
        {"exit": False, "candle_time": 1, "enter": "short", "size_fraction": 0.5, "stop_loss": -1.0},
        {"exit": False, "candle_time": 1, "enter": None, "size_fraction": 0.5},
        {"exit": False, "candle_time": 1, "enter": None, "trailing_stop": 2.0},
        {"exit": False, "candle_time": 1, "enter": "long", "size_fraction": 0.5, "trailing_stop": 25.0},
        {"exit": False, "candle_time": 1, "enter": "long", "size_fraction": 0.5, "trailing_stop": float("nan")},
        {"exit": False, "candle_time": 1, "enter": "long", "size_fraction": 0.5, "trailing_stop": 2, "stop_loss": 9.0},
        {"exit": False, "candle_time": 1, "enter": None, "take_profit_ladder": [[2, 50], [5, 50]]},
        {"exit": False, "candle_time": 1, "enter": "long", "size_fraction": 0.5, "take_profit_ladder": [[2, 100]]},
        {
            "exit": False,
            "candle_time": 1,
            "enter": "long",
            "size_fraction": 0.5,
            "take_profit_ladder": [[2, 50], [5, 49]],
        },
        {
            "exit": False,
            "candle_time": 1,
            "enter": "long",
            "size_fraction": 0.5,
            "take_profit_ladder": [[-2, 50], [5, 50]],
        },
        {"exit": False, "candle_time": 1, "enter": "long", "size_fraction": 0.5, "take_profit_ladder": "2:50,5:50"},
        {
            "exit": False,
            "candle_time": 1,
            "enter": "long",
            "size_fraction": 0.5,
            "take_profit_ladder": [[2, 50], [5, 50]],
            "take_profit": 9.0,
        },
        {
            "exit": False,
            "candle_time": 1,
            "enter": "long",
            "size_fraction": 0.5,
            "take_profit_ladder": [[2, 50], [5, 50]],
            "trailing_stop": 2.0,
        },
    ],
)
def test_check_decision_refuses_what_a_compromised_child_could_send(answer):
    with pytest.raises(SandboxError) as info:
        check_decision(answer)
    assert info.value.error["type"] == "InvalidDecision"


def test_check_decision_passes_a_ladder_with_a_stop():
    answer = {
        "exit": False, "candle_time": 1, "enter": "long", "size_fraction": 0.5,
        "take_profit_ladder": [[2, 100 / 3], [4, 100 / 3], [6, 100 / 3]], "stop_loss": 9.0,
    }  # fmt: skip
    assert check_decision(answer) is answer


def test_audit_hook_ignores_rewritten_module_globals():
    """The hook is a closure over frozen data: emptying the module's block lists changes nothing."""
    import subprocess
    import sys

    script = (
        "import core.strategies.sandbox_child as child\n"
        "child._install_audit_hook(('/nonexistent/',))\n"
        "child._BLOCKED_EVENTS = child._BLOCKED_IMPORT_ROOTS = frozenset()\n"
        "child._BLOCKED_EVENT_PREFIXES = ()\n"
        "child._allowed_read_roots = lambda root: ('/',)\n"
        "import os\n"
        "try:\n    os.system('true')\nexcept PermissionError as exc:\n    print('refused', exc)\n"
        "try:\n    open('/etc/hostname')\nexcept PermissionError as exc:\n    print('refused', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))),
    )
    assert result.stdout.count("refused") == 2, result.stdout + result.stderr
