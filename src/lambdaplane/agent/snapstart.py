"""SnapStart inside the sandbox: the initialised runtime as a template, forked per restore.

awslambdaric calls ``restore_next()`` once the function's init phase and its
before-snapshot hooks are done (``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``). In a
template sandbox that call never returns in the template itself: it tells the host the
snapshot is ready, then serves restore requests. Each request brings, over the control
socket (SCM_RIGHTS), the new environment's host socket, its log pipe, a "life" pipe,
the strict seccomp program and the environment's cgroup files. For each one:

1. the template forks (the *intermediate*): it joins the environment's cgroups (writes
   ``0``, "myself", to each ``cgroup.procs`` the host opened), takes the new log pipe as
   stdout/stderr, and unshares a new user, mount, pid, ipc, uts, net and cgroup
   namespace, mapping only its own uid and gid (993/990);
2. it forks again: the child is pid 1 of the new pid namespace. It makes its mounts
   private, mounts a fresh tmpfs on /tmp and a fresh /proc (its own pid namespace
   only), sets the hostname and brings ``lo`` up, then forks the environment's runtime
   (pid 2) and stays as its init: it reaps orphans and writes the runtime's wait
   status to the life pipe when it ends. The intermediate exits at once;
3. pid 1 then drops every capability (bounding set, ambient, then capset to nothing)
   and stacks the strict seccomp program (the same one as every
   ordinary environment) *before* it forks pid 2, which inherits all of that; pid 2
   waits for the host's ASSIGN on its own socket (the host restores a spare ahead of
   demand), returns from ``restore_next`` and awslambdaric runs the after-restore hooks.

While capabilities are held (from the unshare to pid 1's lock-down) signals are
blocked and the fork in between is libc's, so neither a signal handler nor an at-fork
hook the function registered at init runs then: only this module's code does.
Standard library only, Python 3.9 syntax.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import struct
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_REC, MS_PRIVATE = 16384, 1 << 18
PR_CAPBSET_DROP, PR_SET_SECCOMP, PR_CAP_AMBIENT = 24, 22, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2
LINUX_CAPABILITY_VERSION_3 = 0x20080522
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(OSError):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SetupError(errno, f"{what}: {os.strerror(errno)}")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def lock_down(program: bytes) -> None:
    """Drop every capability and stack ``program`` (seccomp)."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # EINVAL past the kernel's last capability
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = struct.pack("=Ii", LINUX_CAPABILITY_VERSION_3, 0)
    data = ctypes.create_string_buffer(24)  # two zeroed __user_cap_data_struct
    head = ctypes.create_string_buffer(header, len(header))
    _check(_libc.capset(head, data), "capset")
    buffer = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _hosts_file(hostname: str) -> None:
    """/etc/hosts naming this environment's hostname (the template's names its own):
    written in the new /tmp, bound over /etc/hosts read-only, then unlinked from /tmp."""
    path = f"/tmp/.lambdaplane-hosts-{os.getpid()}"
    with open(path, "w") as hosts:
        hosts.write(f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost\n")
    try:
        _mount(path, "/etc/hosts", None, MS_BIND, None)
        _mount("none", "/etc/hosts", None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)
    finally:
        os.unlink(path)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        import fcntl

        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(probe.fileno(), SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def serve(ctl: socket.socket, adopt: Callable[[int], None], keep: tuple[int, ...]) -> None:
    """The template's loop: fork one restored environment per request; returns only in
    the restored runtime (pid 2 of its namespace), after ``adopt(host socket fd)``."""
    ctl.sendall(b'{"ready":true}')
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(ctl, 65536, 16)
        except InterruptedError:
            continue
        if not message:
            os._exit(0)  # The host closed the template.
        meta = json.loads(message)
        if _restore(meta, fds, ctl, keep):
            adopt(fds[0])
            return


def _restore(
    meta: dict[str, object], fds: list[int], ctl: socket.socket, keep: tuple[int, ...]
) -> bool:
    """In the template: False after forking; in the new environment's runtime: True."""
    env_sock, log_w, life_w, filter_fd = fds[:4]
    cgroup_fds = fds[4:]
    sys.stdout.flush()
    sys.stderr.flush()
    intermediate = os.fork()
    if intermediate:
        for fd in fds:
            os.close(fd)
        os.waitpid(intermediate, 0)
        return False
    try:
        # No Python-level signal handler (the function's, installed at init) may run
        # while this process holds capabilities: signals wait until pid 2 runs.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        for fd in cgroup_fds:
            os.write(fd, b"0")
            os.close(fd)
        ctl.close()
        os.dup2(log_w, 1)
        os.dup2(log_w, 2)
        os.close(log_w)
        program = _read_all(filter_fd)
        os.close(filter_fd)
        uid, gid = os.getuid(), os.getgid()
        flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
        _check(_libc.unshare(flags | CLONE_NEWNET | CLONE_NEWCGROUP), "unshare")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
        # libc's fork, not os.fork: no at-fork hook (the function may have registered
        # some) runs while capabilities are held. This process is single-threaded.
        init = _libc.fork()
        if init < 0:
            raise SetupError(ctypes.get_errno(), "fork")
        if init:
            os._exit(0)
        _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
        size = int(str(meta["tmp_mb"])) * 1024 * 1024
        _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
        hostname = str(meta["hostname"])
        _check(_libc.sethostname(hostname.encode(), len(hostname)), "sethostname")
        _hosts_file(hostname)
        _loopback_up()
        lock_down(program)  # from here on, as restricted as any ordinary environment
        runtime = os.fork()  # at-fork hooks run now, without capabilities (random reseeds)
        if runtime == 0:
            os.close(life_w)
            _write("/proc/self/oom_score_adj", "1000")
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            return True
        os.close(env_sock)
        for fd in keep:  # the template's own host socket (pid 2 closes its copy in adopt)
            os.close(fd)
        _init_loop(runtime, life_w)
    except BaseException as exc:
        try:
            os.write(2, f"lambdaplane: restore failed: {exc}\n".encode())
        finally:
            os._exit(70)
    os._exit(0)


def _init_loop(runtime: int, life_w: int) -> None:
    """pid 1 of a restored environment: reap everything; report the runtime's end."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue
        if pid == runtime:
            code = (
                os.waitstatus_to_exitcode(status)
                if hasattr(os, "waitstatus_to_exitcode")
                else (-(status & 0x7F) if status & 0x7F else status >> 8)
            )
            os.write(life_w, struct.pack("!i", code))
            os._exit(0)
