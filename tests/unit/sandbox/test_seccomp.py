"""The seccomp program, decoded and run through a small cBPF interpreter."""

from __future__ import annotations

import errno
import platform
import struct

import pytest

from lambdaplane.sandbox.seccomp import (
    AUDIT_ARCH,
    DENIED_SYSCALLS,
    SECCOMP_RET_ALLOW,
    SECCOMP_RET_ERRNO,
    SECCOMP_RET_KILL_PROCESS,
    SYSCALL_NUMBERS,
    UnsupportedArchitecture,
    build_filter,
)

EPERM = SECCOMP_RET_ERRNO | errno.EPERM
ENOSYS = SECCOMP_RET_ERRNO | errno.ENOSYS
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
THREAD_FLAGS = 0x003D0F00  # what glibc's pthread_create passes to clone


def decode(program: bytes) -> list[tuple[int, int, int, int]]:
    assert len(program) % 8 == 0
    return [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]


def run(program: bytes, arch: int, nr: int, args: tuple[int, ...] = ()) -> int:
    """Evaluate the filter for one syscall, as the kernel would (the subset we emit)."""
    padded = (*args, *(0,) * (6 - len(args)))
    data = struct.pack("=IIQ6Q", nr, arch, 0, *padded)
    insns = decode(program)
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:  # ld [k]
            acc = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif code == 0x06:  # ret k
            return k
        elif code in (0x15, 0x35, 0x45):  # jeq / jge / jset k
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += 1 + (jt if taken else jf)
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_program_starts_with_the_arch_check(arch: str) -> None:
    insns = decode(build_filter(arch))
    assert insns[0] == (0x20, 0, 0, 4)  # ld seccomp_data.arch
    code, jt, jf, k = insns[1]
    assert (code, jt, k) == (0x15, 0, AUDIT_ARCH[arch])
    assert insns[2 + jf] == (0x06, 0, 0, SECCOMP_RET_KILL_PROCESS)
    assert insns[2] == (0x20, 0, 0, 0)  # ld seccomp_data.nr


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_denied_syscall_has_an_eperm_entry(arch: str) -> None:
    program = build_filter(arch)
    insns = decode(program)
    compared = {k for code, _, _, k in insns if code == 0x15}
    numbers = SYSCALL_NUMBERS[arch]
    for name in DENIED_SYSCALLS:
        if name in numbers:
            assert numbers[name] in compared, name
            assert run(program, AUDIT_ARCH[arch], numbers[name]) == EPERM, name


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_brief_deny_list_is_covered(arch: str) -> None:
    required = {
        "mount", "umount2", "pivot_root", "swapon", "swapoff", "reboot", "kexec_load",
        "kexec_file_load", "init_module", "finit_module", "delete_module", "keyctl",
        "add_key", "request_key", "bpf", "perf_event_open", "ptrace", "process_vm_readv",
        "process_vm_writev", "userfaultfd", "unshare", "setns", "acct", "quotactl", "syslog",
        "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "open_by_handle_at",
        "name_to_handle_at", "lookup_dcookie",
    }  # fmt: skip
    assert required <= set(SYSCALL_NUMBERS[arch])
    assert required <= set(DENIED_SYSCALLS)


def test_x86_64_port_io_is_denied() -> None:
    program = build_filter("x86_64")
    for name in ("iopl", "ioperm"):
        assert run(program, AUDIT_ARCH["x86_64"], SYSCALL_NUMBERS["x86_64"][name]) == EPERM


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_ordinary_syscalls_are_allowed(arch: str) -> None:
    program = build_filter(arch)
    # read, write, openat, getpid on each architecture
    ordinary = {"x86_64": (0, 1, 257, 39), "aarch64": (63, 64, 56, 172)}[arch]
    for nr in ordinary:
        assert run(program, AUDIT_ARCH[arch], nr) == SECCOMP_RET_ALLOW


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_foreign_architecture_is_killed(arch: str) -> None:
    program = build_filter(arch)
    for foreign in (0x40000003, 0x40000028, *(a for a in AUDIT_ARCH.values() if a != AUDIT_ARCH[arch])):  # fmt: skip
        assert run(program, foreign, 0) == SECCOMP_RET_KILL_PROCESS


def test_x32_syscalls_are_denied_on_x86_64() -> None:
    program = build_filter("x86_64")
    assert run(program, AUDIT_ARCH["x86_64"], 0x40000000 | 39) == EPERM
    assert run(program, AUDIT_ARCH["x86_64"], 0x40000000 | 0) == EPERM


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_clone_creating_namespaces_is_denied_threads_are_not(arch: str) -> None:
    program = build_filter(arch)
    clone = SYSCALL_NUMBERS[arch]["clone"]
    audit = AUDIT_ARCH[arch]
    assert run(program, audit, clone, (THREAD_FLAGS,)) == SECCOMP_RET_ALLOW
    assert run(program, audit, clone, (0x11,)) == SECCOMP_RET_ALLOW  # fork: SIGCHLD
    assert run(program, audit, clone, (CLONE_NEWUSER | 0x11,)) == EPERM
    assert run(program, audit, clone, (CLONE_NEWNET,)) == EPERM
    assert run(program, audit, SYSCALL_NUMBERS[arch]["clone3"], (0, 88)) == ENOSYS


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_personality_only_with_safe_values(arch: str) -> None:
    program = build_filter(arch)
    nr = SYSCALL_NUMBERS[arch]["personality"]
    audit = AUDIT_ARCH[arch]
    for persona in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert run(program, audit, nr, (persona,)) == SECCOMP_RET_ALLOW
    assert run(program, audit, nr, (0x0040000,)) == EPERM  # ADDR_NO_RANDOMIZE


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(UnsupportedArchitecture):
        build_filter("riscv64")


def test_default_is_the_host_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    assert build_filter() == build_filter("aarch64")
