"""The stack's CPU read from /proc: only processes carrying the stack's ARISTOBOT_VAR count, by role, and the
time a process spends between two snapshots is what the bench reports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from bench.stack_cpu import above_idle, cpu_ms_of, role_of, snapshot, spent_by_role

# Burns ~0.3 s of CPU once told to (a line on stdin), then waits: "-m feeds" is only in its command line.
BURNER = """
import sys, time
sys.stdin.readline()
end = time.process_time() + 0.3
while time.process_time() < end:
    pass
print("done", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize(
    ("cmdline", "role"),
    [
        ("/usr/lib/postgresql/bin/postgres -D var/pg", "postgres"),
        ("postgres: aristobot aristobot 127.0.0.1(5032) idle", "postgres"),
        ("redis-server 127.0.0.1:6390", "redis"),
        (".venv/bin/celery -A workers.celery_app worker -Q orders -c 4 -n worker@host", "worker"),
        (".venv/bin/celery -A workers.celery_app worker -Q bots,maintenance -n maintenance@host", "maintenance"),
        (".venv/bin/celery -A workers.celery_app beat --schedule var/celerybeat-schedule", "beat"),
        ("python -m webapp", "web"),
        ("python -m sim.perp", "perpsim"),
        ("/usr/bin/python3 .venv/bin/aristobot sim", "sim"),
        ("bash", "other"),
    ],
)
def test_a_process_is_named_by_the_role_its_command_line_shows(cmdline, role):
    assert role_of(cmdline) == role


def test_a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields():
    stat = b"42 (odd) name)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 1000 0 0"
    assert cpu_ms_of(stat) == pytest.approx((250 + 50 + 7 + 3) * 1000 / os.sysconf("SC_CLK_TCK"))


def test_the_cpu_a_stack_process_spends_between_two_snapshots_is_counted_by_role(tmp_path):
    var_dir = str(tmp_path / "var")
    env = {**os.environ, "ARISTOBOT_VAR": var_dir}
    ours = subprocess.Popen(
        [sys.executable, "-c", BURNER, "-m", "feeds"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    stranger = subprocess.Popen(
        [sys.executable, "-c", BURNER],
        env={**os.environ, "ARISTOBOT_VAR": var_dir + "-other"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        before = snapshot(var_dir)
        assert {process.pid: process.role for process in before.values()} == {ours.pid: "feeds"}
        for child in (ours, stranger):
            child.stdin.write("go\n")
            child.stdin.flush()
        assert ours.stdout.readline() == "done\n" and stranger.stdout.readline() == "done\n"
        spent = spent_by_role(before, snapshot(var_dir))
        assert set(spent) == {"feeds"}
        assert spent["feeds"] >= 250  # the 0.3 s burnt, at clock-tick resolution; the stranger is not counted
    finally:
        for child in (ours, stranger):
            child.kill()
            child.wait()


# Starts BURNER as its child with an empty environment (as a PostgreSQL backend, whose process title
# overwrites its environment), passes stdin on, then waits.
PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], env={}, stdin=sys.stdin, stdout=sys.stdout)
print(child.pid, flush=True)
child.wait()
"""


def test_a_child_whose_environment_lost_the_marker_still_counts_through_its_parent(tmp_path):
    var_dir = str(tmp_path / "var")
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, BURNER, "-m", "webapp"],
        env={**os.environ, "ARISTOBOT_VAR": var_dir},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    child_pid = int(parent.stdout.readline())
    try:
        before = snapshot(var_dir)
        assert before[child_pid].role == "other" and before[parent.pid].role == "web"
        parent.stdin.write("go\n")
        parent.stdin.flush()
        assert parent.stdout.readline() == "done\n"
        after = snapshot(var_dir)
        assert after[child_pid].cpu_ms - before[child_pid].cpu_ms >= 250
        assert spent_by_role(before, after)["other"] >= 250
    finally:
        os.kill(child_pid, signal.SIGKILL)
        parent.wait()


def test_the_cpu_above_idle_takes_off_each_role_s_idle_rate_over_the_run_and_never_goes_negative():
    spent = {"worker": 900.0, "arb": 100.0, "web": 50.0}
    idle = {"worker": 40.0, "arb": 300.0}  # over 20 s
    assert above_idle(spent, idle, idle_seconds=20, seconds=10) == {"worker": 880.0, "arb": 0.0, "web": 50.0}
