"""Python 3.9-3.13 on the host's interpreters, with the official awslambdaric.

/var/runtime holds awslambdaric and boto3, as AWS's managed Python runtimes do. Managed
Python normally takes the direct path (``agent/pyruntime.py``: awslambdaric's own
``bootstrap.run`` speaking the host's frames); ``argv`` is the HTTP Runtime API path.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from lambdaplane.service.runtimes import Runtime

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


class Python:
    family = "python"
    needs_runtime_dir = True

    def install(self, runtime: Runtime, target: Path, say: Callable[[str], None]) -> bool:
        """pip (this virtualenv's, asking for the target version's wheels), then byte-compile
        with the target interpreter so no cold start pays for compiling."""
        assert runtime.executable is not None
        say(f"installing {runtime.id} runtime (awslambdaric, boto3)")
        result = subprocess.run(
            _pip_target(runtime.id, target), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            say(f"  could not install {runtime.id}: {result.stderr.strip()[-500:]}")
            return False
        subprocess.run(
            [runtime.executable, "-m", "compileall", "-q", "-j", "0", str(target)],
            capture_output=True,
            check=False,
        )
        _compile_agent(runtime)
        return True

    def environment(self, runtime: Runtime) -> dict[str, str]:
        minor = runtime.id.removeprefix("python")
        return {
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime.id}",
            "PYTHONPATH": f"/opt/python/lib/python{minor}/site-packages:/opt/python:/var/runtime",
        }

    def argv(self, runtime: Runtime, handler: str, code_dir: Path) -> list[str]:
        assert runtime.executable is not None
        return [runtime.executable, "-m", "awslambdaric", handler]


def _compile_agent(runtime: Runtime) -> None:
    """The agent directory is mounted read-only: ship its .pyc for this Python too."""
    import lambdaplane.agent

    assert runtime.executable is not None
    agent_dir = Path(lambdaplane.agent.__file__).parent
    subprocess.run(
        [runtime.executable, "-m", "compileall", "-q", str(agent_dir)],
        capture_output=True,
        check=False,
    )


def remove(target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)


LANGUAGE = Python()
