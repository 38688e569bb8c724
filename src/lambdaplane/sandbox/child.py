"""Starting a sandbox's first process without forking the server.

uvloop's ``subprocess_exec`` forks the whole server (copying its page tables: 5 ms with
a 20 MB heap, 24 ms with 300 MB, measured here) and waits for the child's exec with the
event loop blocked, so every sandbox start stalled every request in flight; CPython's
``subprocess`` forks too when given a ``preexec_fn``. Without one, ``subprocess.Popen``
uses vfork: 0.15-0.2 ms whatever the heap.

What used to run between fork and exec is done by programs instead: the child execs
``/bin/sh``, which writes its own pid into each cgroup's ``cgroup.procs`` (so bwrap and
everything it starts are in the environment's cgroups from their first instruction)
and then execs bwrap, through ``setpriv`` when it must run as an unprivileged uid. Those
writes, which can take milliseconds on cgroup v1, now happen in the child, not in the
server's event loop.

:class:`ChildProcess` offers what the rest of the server and the tests use of
``asyncio.subprocess.Process``: ``pid``, ``returncode``, ``wait``, ``communicate``,
``stdout``/``stderr`` readers, signals, plus ``close``. Its exit is watched with a
pidfd on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Sequence

SH = "/bin/sh"
SETPRIV = "/usr/bin/setpriv"
# Arguments: the cgroup.procs files, "--", then the command. Exit 126 if a join fails:
# the command never runs outside its cgroups.
_JOIN = 'while [ "$1" != "--" ]; do echo $$ > "$1" || exit 126; shift; done; shift; exec "$@"'
_PIPE_LIMIT = 2**16


def command_line(
    argv: Sequence[str], cgroup_procs: Sequence[str] = (), run_as: int | None = None
) -> list[str]:
    """What to exec so that ``argv`` starts in ``cgroup_procs``' cgroups, as ``run_as``."""
    command = list(argv)
    if run_as is not None:
        command = [
            SETPRIV, f"--reuid={run_as}", f"--regid={run_as}", "--clear-groups", *command
        ]  # fmt: skip
    if cgroup_procs:
        command = [SH, "-c", _JOIN, "lambdaplane-join", *cgroup_procs, "--", *command]
    return command


class ChildProcess:
    """A started process, watched from the event loop (see the module docstring)."""

    def __init__(self, popen: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._popen = popen
        self._loop = loop
        self.pid = popen.pid
        self.returncode: int | None = None
        self.stdout = asyncio.StreamReader(limit=_PIPE_LIMIT, loop=loop)
        self.stderr = asyncio.StreamReader(limit=_PIPE_LIMIT, loop=loop)
        self._pipes: list[asyncio.BaseTransport] = []
        self._done: asyncio.Future[int] = loop.create_future()
        self._pidfd = os.pidfd_open(popen.pid)
        loop.add_reader(self._pidfd, self._reap)

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        pass_fds: Sequence[int] = (),
        cgroup_procs: Sequence[str] = (),
        run_as: int | None = None,
    ) -> ChildProcess:
        """Start ``argv`` (stdin /dev/null, stdout and stderr piped, an empty environment,
        a new session); raises OSError or SubprocessError if it cannot be started."""
        loop = asyncio.get_running_loop()
        popen = subprocess.Popen(
            command_line(argv, cgroup_procs, run_as),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={},
            close_fds=True,
            pass_fds=tuple(pass_fds),
            start_new_session=True,
        )
        child = cls(popen, loop)
        try:
            for pipe, reader in ((popen.stdout, child.stdout), (popen.stderr, child.stderr)):
                protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
                transport, _ = await loop.connect_read_pipe(_given(protocol), pipe)
                child._pipes.append(transport)
        except BaseException:
            child.close()
            raise
        return child

    def _reap(self) -> None:
        if self._popen.poll() is None:
            return
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        self.returncode = self._popen.returncode
        if not self._done.done():
            self._done.set_result(self.returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._done)

    async def communicate(self) -> tuple[bytes, bytes]:
        """Everything it writes to stdout and stderr until it exits."""
        out, err = await asyncio.gather(self.stdout.read(), self.stderr.read())
        await self.wait()
        return out, err

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def close(self) -> None:
        """Kill it if it still runs and close its pipes; ``wait`` still answers its end."""
        self.kill()
        for pipe in self._pipes:
            pipe.close()
        self._pipes.clear()


def _given(protocol: asyncio.StreamReaderProtocol) -> Callable[[], asyncio.StreamReaderProtocol]:
    return lambda: protocol
