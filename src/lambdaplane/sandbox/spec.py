"""What one execution environment's sandbox is made of: a pure, validated description.

A :class:`SandboxSpec` says what runs, which host directories appear where, and the
limits. Backends (bubblewrap today; gVisor or a microVM later) turn it into a process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_ENV_ID = re.compile(r"[a-z0-9-]{1,64}")
_ENV_NAME = re.compile(r"[^=\x00]+")


@dataclass(frozen=True)
class CpuPolicy:
    """How CPU follows memory: weighted ``shares`` (default) or an AWS-faithful hard ``quota``."""

    mode: Literal["shares", "quota"] = "shares"

    def __post_init__(self) -> None:
        if self.mode not in ("shares", "quota"):
            raise ValueError(f"CpuPolicy.mode must be 'shares' or 'quota', not {self.mode!r}")


@dataclass(frozen=True)
class SandboxSpec:
    """One environment's sandbox; invalid values raise ``ValueError`` at construction."""

    env_id: str  # unique id, [a-z0-9-]; used in cgroup names
    argv: tuple[str, ...]  # command to run inside (absolute path of an interpreter + script)
    env: Mapping[str, str]  # the complete environment inside (clearenv + these)
    code_dir: Path  # host dir -> /var/task, read-only
    runtime_dir: Path | None  # host dir -> /var/runtime, read-only (None: empty dir)
    agent_dir: Path  # host dir -> /var/lambdaplane, read-only
    host_ro_paths: tuple[Path, ...]  # extra host paths bound read-only at the SAME path
    opt_dir: Path | None = None  # host dir -> /opt read-only; None => /opt exists, empty
    # Paths under the bound host trees to hide behind an empty read-only tmpfs (an
    # interpreter's own site-packages: a function sees what AWS's runtime has, no more).
    hidden_paths: tuple[str, ...] = ()
    memory_mb: int = 128  # memory limit, no swap
    tmp_mb: int = 512  # /tmp tmpfs size (EphemeralStorage)
    pids_max: int = 1024
    cpu: CpuPolicy = CpuPolicy("shares")
    network: bool = False  # False: new empty netns with only lo
    pass_fds: tuple[int, ...] = ()  # fds inherited as-is (the agent's host socket)
    cwd: str = "/var/task"

    def __post_init__(self) -> None:
        if not _ENV_ID.fullmatch(self.env_id):
            raise ValueError(f"env_id must match [a-z0-9-]{{1,64}}: {self.env_id!r}")
        if not self.argv or not self.argv[0].startswith("/"):
            raise ValueError(f"argv must start with an absolute path: {self.argv!r}")
        for name, value in self.env.items():
            if not _ENV_NAME.fullmatch(name) or "\x00" in value:
                raise ValueError(f"invalid environment variable {name!r}")
        for label, path in (("code_dir", self.code_dir), ("agent_dir", self.agent_dir)):
            if not path.is_absolute():
                raise ValueError(f"{label} must be absolute: {path}")
        for extra in (self.runtime_dir, self.opt_dir, *self.host_ro_paths):
            if extra is not None and not extra.is_absolute():
                raise ValueError(f"host paths must be absolute: {extra}")
        if not self.cwd.startswith("/"):
            raise ValueError(f"cwd must be absolute: {self.cwd!r}")
        for label, amount in (
            ("memory_mb", self.memory_mb),
            ("tmp_mb", self.tmp_mb),
            ("pids_max", self.pids_max),
        ):
            if amount < 1:
                raise ValueError(f"{label} must be positive, not {amount}")
        if any(fd < 0 for fd in self.pass_fds):
            raise ValueError(f"pass_fds must be non-negative: {self.pass_fds!r}")

    @property
    def hostname(self) -> str:
        """The UTS hostname inside: the env id, shortened."""
        return hostname_for(self.env_id)


def hostname_for(env_id: str) -> str:
    """An environment's UTS hostname: its id, shortened. Never digits alone: glibc takes
    a name of digits (and dots) for an address and never looks it up in /etc/hosts, so
    gethostbyname(gethostname()) failed in one environment in ~290 (a hex id whose first
    12 characters are all digits)."""
    name = env_id[:12].strip("-") or "localhost"
    if all(c.isdigit() or c == "." for c in name):
        name = "e" + name[:11]
    return name
