"""A classic-BPF seccomp filter for function code, assembled by hand.

Why a deny-list with a default of ALLOW: functions run arbitrary language runtimes,
native extensions and subprocesses, and an allow-list that is wrong breaks them in
ways that are hard to diagnose. The sandbox already drops every capability, so most
privileged syscalls fail anyway; the filter removes the kernel attack surface that
stays reachable *without* capabilities inside a user namespace (new namespaces,
keyrings, eBPF, perf, userfaultfd, io_uring, the new mount API, ptrace) and the
privileged calls, as a second line of defence.

The program, for the host's architecture:

1. ``seccomp_data.arch`` must be the host's audit arch, else kill the process (no
   32-bit compat entry points); on x86_64, x32 numbers (bit 30 set) get EPERM;
2. each denied syscall number returns ``EPERM``;
3. ``clone`` with any namespace flag in arg0 returns ``EPERM``; ``clone3`` returns
   ``ENOSYS`` (its flags live in memory BPF cannot read) so libc falls back to
   ``clone``, as Docker's profile does;
4. ``personality`` is allowed only with the values Docker's profile allows (the
   others, such as ADDR_NO_RANDOMIZE, get ``EPERM``);
5. everything else is allowed.

``ptrace`` is denied entirely: debuggers and profilers that attach (py-spy, gdb,
strace) do not work inside a function. ``bwrap --seccomp FD`` reads the raw bytes
(an array of ``struct sock_filter``) produced by :func:`build_filter`.
"""

from __future__ import annotations

import errno
import platform
import struct
import sys
from dataclasses import dataclass

# <linux/bpf_common.h>
BPF_LD, BPF_JMP, BPF_RET = 0x00, 0x05, 0x06
BPF_W, BPF_ABS, BPF_K = 0x00, 0x20, 0x00
BPF_JEQ, BPF_JGE, BPF_JSET = 0x10, 0x30, 0x40

# <linux/seccomp.h>
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000

# offsets in struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6];}
OFFSET_NR, OFFSET_ARCH, OFFSET_ARGS = 0, 4, 16

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000

CLONE_NEW_NAMESPACE_FLAGS = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
)
# PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the 0xffffffff query
ALLOWED_PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

DENIED_SYSCALLS: tuple[str, ...] = (
    # filesystems and the mount namespace
    "mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "swapon", "swapoff", "quotactl", "quotactl_fd",
    "open_by_handle_at", "name_to_handle_at", "acct",
    # namespaces
    "unshare", "setns",
    # the machine: power, kernel images and modules, clocks, kernel log
    "reboot", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog",
    # kernel attack surface reachable without capabilities
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "lookup_dcookie",
    # other processes' memory
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
    # x86 only: port I/O and obsolete interfaces
    "iopl", "ioperm", "_sysctl", "uselib", "create_module", "get_kernel_syms",
    "query_module", "nfsservctl",
)  # fmt: skip

# Numbers from the kernel's uapi headers: x86_64's own table; aarch64 uses asm-generic.
SYSCALL_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {
        "mount": 165, "umount2": 166, "pivot_root": 155, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        "swapon": 167, "swapoff": 168, "quotactl": 179, "quotactl_fd": 443,
        "open_by_handle_at": 304, "name_to_handle_at": 303, "acct": 163,
        "unshare": 272, "setns": 308,
        "reboot": 169, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175,
        "finit_module": 313, "delete_module": 176, "settimeofday": 164, "clock_settime": 227,
        "clock_adjtime": 305, "adjtimex": 159, "syslog": 103,
        "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321,
        "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "lookup_dcookie": 212,
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438,
        "iopl": 172, "ioperm": 173, "_sysctl": 156, "uselib": 134, "create_module": 174,
        "get_kernel_syms": 177, "query_module": 178, "nfsservctl": 180,
        "clone": 56, "clone3": 435, "personality": 135,
    },
    "aarch64": {
        "mount": 40, "umount2": 39, "pivot_root": 41, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        "swapon": 224, "swapoff": 225, "quotactl": 60, "quotactl_fd": 443,
        "open_by_handle_at": 265, "name_to_handle_at": 264, "acct": 89,
        "unshare": 97, "setns": 268,
        "reboot": 142, "kexec_load": 104, "kexec_file_load": 294, "init_module": 105,
        "finit_module": 273, "delete_module": 106, "settimeofday": 170, "clock_settime": 112,
        "clock_adjtime": 266, "adjtimex": 171, "syslog": 116,
        "keyctl": 219, "add_key": 217, "request_key": 218, "bpf": 280,
        "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "lookup_dcookie": 18,
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "pidfd_getfd": 438,
        "nfsservctl": 42,
        "clone": 220, "clone3": 435, "personality": 92,
    },
}  # fmt: skip

_SOCK_FILTER = struct.Struct("=HBBI")  # struct sock_filter {u16 code; u8 jt; u8 jf; u32 k;}


class UnsupportedArchitecture(Exception):
    """No syscall table for this machine; the sandbox refuses to run unfiltered."""


def host_arch() -> str:
    """The host's architecture as named in :data:`SYSCALL_NUMBERS`."""
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


@dataclass(frozen=True)
class _Insn:
    code: int
    k: int
    jt: str | None = None  # label to jump to when true (None: fall through)
    jf: str | None = None  # label to jump to when false (None: fall through)


def _ld(offset: int) -> _Insn:
    return _Insn(BPF_LD | BPF_W | BPF_ABS, offset)


def _jump(op: int, k: int, *, jt: str | None = None, jf: str | None = None) -> _Insn:
    return _Insn(BPF_JMP | op | BPF_K, k, jt, jf)


def _ret(action: int) -> _Insn:
    return _Insn(BPF_RET | BPF_K, action)


def _assemble(program: list[_Insn | str]) -> bytes:
    """Resolve labels (the strings in ``program``) into forward jump offsets and pack."""
    labels: dict[str, int] = {}
    insns: list[_Insn] = []
    for item in program:
        if isinstance(item, str):
            labels[item] = len(insns)
        else:
            insns.append(item)

    def offset(at: int, label: str | None) -> int:
        if label is None:
            return 0
        distance = labels[label] - (at + 1)
        if not 0 <= distance <= 255:
            raise AssertionError(f"seccomp jump to {label} out of range: {distance}")
        return distance

    return b"".join(
        _SOCK_FILTER.pack(insn.code, offset(i, insn.jt), offset(i, insn.jf), insn.k)
        for i, insn in enumerate(insns)
    )


def build_filter(arch: str | None = None, *, allow: tuple[str, ...] = ()) -> bytes:
    """The filter for ``arch`` (default: the host's) as raw ``struct sock_filter`` bytes.

    ``allow`` takes names off the deny-list: a SnapStart template needs ``unshare`` and
    ``mount`` to give each restored environment its own namespaces (docs/snapstart.md).
    Raises :class:`UnsupportedArchitecture` for an architecture without a table.
    """
    arch = arch or host_arch()
    if arch not in SYSCALL_NUMBERS:
        raise UnsupportedArchitecture(f"no seccomp syscall table for {arch!r}")
    numbers = SYSCALL_NUMBERS[arch]
    arg0_low = OFFSET_ARGS + (0 if sys.byteorder == "little" else 4)

    program: list[_Insn | str] = [
        _ld(OFFSET_ARCH),
        _jump(BPF_JEQ, AUDIT_ARCH[arch], jf="kill"),
        _ld(OFFSET_NR),
    ]
    if arch == "x86_64":
        program.append(_jump(BPF_JGE, X32_SYSCALL_BIT, jt="eperm"))
    denied = sorted(
        {numbers[name] for name in DENIED_SYSCALLS if name in numbers and name not in allow}
    )
    program += [_jump(BPF_JEQ, nr, jt="eperm") for nr in denied]
    program += [
        _jump(BPF_JEQ, numbers["clone"], jt="clone"),
        _jump(BPF_JEQ, numbers["clone3"], jt="enosys"),
        _jump(BPF_JEQ, numbers["personality"], jt="personality"),
        _ret(SECCOMP_RET_ALLOW),
        "clone",
        _ld(arg0_low),
        _jump(BPF_JSET, CLONE_NEW_NAMESPACE_FLAGS, jt="eperm", jf="allow"),
        "personality",
        _ld(arg0_low),
        *(_jump(BPF_JEQ, value, jt="allow") for value in ALLOWED_PERSONALITIES),
        "eperm",
        _ret(SECCOMP_RET_ERRNO | errno.EPERM),
        "enosys",
        _ret(SECCOMP_RET_ERRNO | errno.ENOSYS),
        "kill",
        _ret(SECCOMP_RET_KILL_PROCESS),
        "allow",
        _ret(SECCOMP_RET_ALLOW),
    ]
    return _assemble(program)
