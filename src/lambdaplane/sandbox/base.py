"""The sandbox seam: what the scheduler asks of any isolation backend.

A :class:`Sandbox` starts one execution environment from a :class:`SandboxSpec` and
returns a :class:`RunningSandbox`, which the caller must ``destroy()`` exactly when it
is done with it (destroy is idempotent and safe after the process has exited).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from lambdaplane.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from lambdaplane.sandbox.child import ChildProcess


class SandboxError(Exception):
    """A sandbox could not be started, or could not be torn down completely."""


class RunningSandbox(Protocol):
    """One started environment. ``process`` has stdout/stderr pipes and stdin on /dev/null."""

    @property
    def process(self) -> ChildProcess: ...

    @property
    def pid(self) -> int:
        """Host pid of the sandbox's outermost process."""
        ...

    async def destroy(self) -> None:
        """Kill every process of the environment, reap it and release its resources."""
        ...

    def memory_peak_bytes(self) -> int | None:
        """Peak memory charged since start or the last reset; None without a memory cgroup."""
        ...

    def memory_reset_peak(self) -> bool:
        """Restart peak tracking (per invocation); False if the backend cannot."""
        ...

    def oom_killed(self) -> bool:
        """Whether the kernel OOM-killed a process of this environment."""
        ...


class Sandbox(Protocol):
    """An isolation backend."""

    async def start(self, spec: SandboxSpec) -> RunningSandbox:
        """Start ``spec.argv`` isolated as described; raises :class:`SandboxError`."""
        ...
