"""One execution environment's isolation, behind an interface other backends can implement.

:class:`Sandbox` (``base``) is the seam; :class:`BubblewrapSandbox` is the backend
(namespaces via bubblewrap, a seccomp filter, cgroups v1 or v2). A
:class:`SandboxSpec` describes one environment. See ``docs/sandbox.md``.
"""

from lambdaplane.sandbox.base import RunningSandbox, Sandbox, SandboxError
from lambdaplane.sandbox.bubblewrap import BubblewrapSandbox, RunningBubblewrap, build_argv
from lambdaplane.sandbox.cgroups import CgroupManager, EnvironmentCgroup, ResourceLimits
from lambdaplane.sandbox.seccomp import UnsupportedArchitecture, build_filter
from lambdaplane.sandbox.spec import CpuPolicy, SandboxSpec

__all__ = [
    "BubblewrapSandbox",
    "CgroupManager",
    "CpuPolicy",
    "EnvironmentCgroup",
    "ResourceLimits",
    "RunningBubblewrap",
    "RunningSandbox",
    "Sandbox",
    "SandboxError",
    "SandboxSpec",
    "UnsupportedArchitecture",
    "build_argv",
    "build_filter",
]
