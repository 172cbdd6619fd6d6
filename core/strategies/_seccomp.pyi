# Types of the C extension built from _seccomp.c.

def os_filter() -> bytes:
    """The sandbox's seccomp program (cBPF bytes) for bwrap --seccomp."""

def lock_down() -> int:
    """Landlock (if any; returns its ABI, 0 without) and no execve nor new process."""
