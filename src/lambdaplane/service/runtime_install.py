"""Install each Python runtime's /var/runtime tree: the official awslambdaric and the SDK.

AWS's managed Python runtimes carry the runtime interface client and boto3; so do
ours. Each tree is built with the installing virtualenv's own pip, asking for wheels
of the target Python version (``--python-version``, binary only), then byte-compiled by
that version's interpreter so no cold start pays for compiling. Idempotent: a tree with
its marker is left alone.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from lambdaplane.service.runtimes import INSTALLED_MARKER, Runtime, find_interpreters

# What /var/runtime holds, pinned to ranges known to work with every Python 3.9-3.13.
PACKAGES = ("awslambdaric>=2.2,<5", "boto3>=1.34,<2")


def _pip_target(runtime_id: str, target: Path) -> list[str]:
    version = runtime_id.removeprefix("python")
    machine = platform.machine()
    return [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-warn-script-location", "--target", str(target),
        "--python-version", version, "--implementation", "cp", "--only-binary=:all:",
        "--platform", f"manylinux2014_{machine}", "--platform", f"manylinux_2_17_{machine}",
        "--platform", f"manylinux_2_28_{machine}", "--platform", f"linux_{machine}",
        *PACKAGES,
    ]  # fmt: skip


def install_runtime(runtime: Runtime, runtimes_dir: Path, say: Callable[[str], None]) -> bool:
    """Build ``runtimes_dir/<id>``; False (with the reason said) when it cannot be built."""
    target = runtimes_dir / runtime.id
    if (target / INSTALLED_MARKER).exists():
        return True
    assert runtime.executable is not None
    staging = runtimes_dir / f".{runtime.id}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    say(f"installing {runtime.id} runtime (awslambdaric, boto3) into {target}")
    result = subprocess.run(
        _pip_target(runtime.id, staging), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        say(f"  could not install {runtime.id}: {result.stderr.strip()[-500:]}")
        shutil.rmtree(staging, ignore_errors=True)
        return False
    subprocess.run(
        [runtime.executable, "-m", "compileall", "-q", "-j", "0", str(staging)],
        capture_output=True,
        check=False,
    )
    (staging / INSTALLED_MARKER).write_text(" ".join(PACKAGES) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return True


def compile_agent(runtime: Runtime) -> None:
    """Byte-compile the agent for ``runtime``'s Python: it is mounted read-only, so a
    missing .pyc would be recompiled on every cold start."""
    import lambdaplane.agent

    assert runtime.executable is not None
    agent_dir = Path(lambdaplane.agent.__file__).parent
    subprocess.run(
        [runtime.executable, "-m", "compileall", "-q", str(agent_dir)],
        capture_output=True,
        check=False,
    )


def install_all(runtimes_dir: Path, say: Callable[[str], None] = print) -> list[str]:
    """Install every Python runtime whose interpreter exists here; the ids installed."""
    runtimes_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for runtime in find_interpreters():
        if runtime.family == "python" and install_runtime(runtime, runtimes_dir, say):
            compile_agent(runtime)
            done.append(runtime.id)
    return sorted(done)
