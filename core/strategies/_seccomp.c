/*
 * Seccomp filters of the strategy sandbox, built from this machine's own <sys/syscall.h>.
 *
 * os_filter()  -> bytes: the cBPF program the parent hands to bubblewrap (`--seccomp FD`); the
 *                 sandbox child runs under it from its first instruction.
 * lock_down()  -> int: called by the child itself once its imports are done. Landlock first, where
 *                 the kernel has it (returns its ABI version, 0 without): no file written, created,
 *                 removed or executed anywhere, no TCP bind/connect (ABI 4), no signal to and no
 *                 abstract socket of a process outside the sandbox (ABI 6), and no ptrace nor
 *                 /proc/PID/mem of such a process (every ABI). Then a second seccomp filter: no
 *                 execve, no new process (fork, vfork, clone without CLONE_THREAD), for good.
 *
 * Both refuse with an errno (EPERM, or ENOSYS for clone3 so that libc falls back to clone, whose
 * flags a filter can read); a system call of a foreign ABI (i386 or x32 on x86_64) kills the process.
 * Hand-written rather than libseccomp: no runtime library and no ctypes in either process, and the
 * syscall numbers are those of the architecture the module was compiled for.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH_NR AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH_NR AUDIT_ARCH_AARCH64
#else
#error "the sandbox seccomp filter supports x86_64 and aarch64"
#endif

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_restrict_self 446
#endif

/* The kernel's landlock ABI, spelled out: the system headers may predate ABI 4 and 6. */
struct landlock_attr {
    unsigned long long handled_access_fs, handled_access_net, scoped;
};
#define LL_VERSION 1U
#define LL_FS_WRITES_AND_EXEC 0x1FF3ULL /* execute, write, remove dir/file, make char/dir/reg/sock/fifo/block/sym */
#define LL_FS_REFER (1ULL << 13)
#define LL_FS_TRUNCATE (1ULL << 14)
#define LL_NET_TCP 0x3ULL             /* bind, connect */
#define LL_SCOPE_UNIX_AND_SIGNAL 0x3ULL /* abstract unix sockets, signals */

#define MAX_PROG 200
#define CLONE_NAMESPACES \
    (CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP)

typedef struct {
    struct sock_filter ins[MAX_PROG];
    unsigned short len;
} Program;

static void emit(Program *p, struct sock_filter f) {
    if (p->len < MAX_PROG) p->ins[p->len++] = f;
}

static void start(Program *p) {
    p->len = 0;
    emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH_NR, 1, 0));
    emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
    emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
#if defined(__x86_64__)
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000 /* x32 */, 0, 1));
    emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
#endif
}

/* With the syscall number in the accumulator: nr == `nr` returns errno `err`. */
static void refuse(Program *p, long nr, int err) {
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1));
    emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)));
}

/* clone(flags, ...): EPERM when `set_means_allow` is 0 and any of `mask` is set in flags, or when it
 * is 1 and none is set. Leaves the syscall number in the accumulator. */
static void refuse_clone(Program *p, unsigned mask, int set_means_allow) {
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 5));
    emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, mask, set_means_allow ? 1 : 0,
                                         set_means_allow ? 0 : 1));
    emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM));
    emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
}

static void finish(Program *p) {
    emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
}

static const long OS_DENIED[] = {
    SYS_socket, SYS_socketpair, SYS_connect, SYS_bind, SYS_listen, SYS_accept, SYS_accept4,
    SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_kcmp, SYS_pidfd_getfd,
    SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot, SYS_move_mount, SYS_open_tree, SYS_fsopen,
    SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_mount_setattr, SYS_unshare, SYS_setns,
    SYS_keyctl, SYS_add_key, SYS_request_key, SYS_bpf, SYS_perf_event_open, SYS_personality,
    SYS_userfaultfd, SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register,
    SYS_kexec_load, SYS_kexec_file_load, SYS_init_module, SYS_finit_module, SYS_delete_module,
    SYS_open_by_handle_at, SYS_name_to_handle_at, SYS_swapon, SYS_swapoff, SYS_reboot, SYS_syslog,
    SYS_acct, SYS_quotactl, SYS_settimeofday, SYS_clock_settime, SYS_clock_adjtime, SYS_adjtimex,
    SYS_sethostname, SYS_setdomainname, SYS_vhangup, SYS_memfd_create,
#if defined(__x86_64__)
    SYS_ioperm, SYS_iopl, SYS_uselib,
#endif
};

static const long EXEC_DENIED[] = {
    SYS_execve, SYS_execveat,
#if defined(__x86_64__)
    SYS_fork, SYS_vfork,
#endif
};

static void build_os(Program *p) {
    start(p);
    for (size_t i = 0; i < sizeof(OS_DENIED) / sizeof(OS_DENIED[0]); i++) refuse(p, OS_DENIED[i], EPERM);
    refuse(p, SYS_clone3, ENOSYS);
    refuse_clone(p, CLONE_NAMESPACES, 0);
    finish(p);
}

static void build_exec(Program *p) {
    start(p);
    for (size_t i = 0; i < sizeof(EXEC_DENIED) / sizeof(EXEC_DENIED[0]); i++) refuse(p, EXEC_DENIED[i], EPERM);
    refuse(p, SYS_clone3, ENOSYS);
    refuse_clone(p, CLONE_THREAD, 1);
    finish(p);
}

static PyObject *os_filter(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused)) {
    Program p;
    build_os(&p);
    if (p.len >= MAX_PROG) return PyErr_Format(PyExc_RuntimeError, "seccomp program too long");
    return PyBytes_FromStringAndSize((const char *)p.ins, (Py_ssize_t)(p.len * sizeof(struct sock_filter)));
}

/* The landlock ABI applied, 0 when the kernel has none, -1 with errno on failure. */
static long landlock(void) {
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_VERSION);
    if (abi < 0) return (errno == ENOSYS || errno == EOPNOTSUPP) ? 0 : -1;
    struct landlock_attr attr = {.handled_access_fs = LL_FS_WRITES_AND_EXEC};
    size_t size = sizeof(attr.handled_access_fs);
    if (abi >= 2) attr.handled_access_fs |= LL_FS_REFER;
    if (abi >= 3) attr.handled_access_fs |= LL_FS_TRUNCATE;
    if (abi >= 4) {
        attr.handled_access_net = LL_NET_TCP;
        size = 2 * sizeof(attr.handled_access_fs);
    }
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_UNIX_AND_SIGNAL;
        size = sizeof(attr);
    }
    long fd = syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (fd < 0) return -1;
    long rc = syscall(SYS_landlock_restrict_self, fd, 0);
    int saved = errno;
    close((int)fd);
    errno = saved;
    return rc == 0 ? abi : -1;
}

static PyObject *lock_down(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(unused)) {
    Program p;
    build_exec(&p);
    struct sock_fprog prog = {.len = p.len, .filter = p.ins};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return PyErr_SetFromErrno(PyExc_OSError);
    long abi = landlock();
    if (abi < 0) return PyErr_SetFromErrno(PyExc_OSError);
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(abi);
}

static PyMethodDef methods[] = {
    {"os_filter", os_filter, METH_NOARGS, "The sandbox's seccomp program (cBPF bytes) for bwrap --seccomp."},
    {"lock_down", lock_down, METH_NOARGS, "Landlock (if any; returns its ABI) and no execve nor new process."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_seccomp", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__seccomp(void) { return PyModule_Create(&module); }
