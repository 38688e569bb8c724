"""Node.js 18/20/22 (``nodejsNN.x``) on the host's ``node``, with lambdaplane's own runtime.

/var/runtime holds what ``nodejs_runtime/`` ships, copied at install time, nothing
fetched: ``bootstrap``, which starts ``node`` as AWS's bootstrap does (V8 heap limits
from the function's memory, ``AWS_LAMBDA_EXEC_WRAPPER``), and ``index.mjs`` with its
modules, which implement AWS's Node.js runtime interface client on the Runtime API.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from lambdaplane.service.runtimes import Runtime

RUNTIME_SOURCE = Path(__file__).with_name("nodejs_runtime")
# The runtime is ES modules with top-level await, private fields and replaceAll.
MIN_MAJOR = 18


def major_version(runtime_id: str) -> int:
    """``nodejs20.x`` → 20; ValueError for an id that is not a Node.js one."""
    match = re.fullmatch(r"nodejs(\d+)\.x", runtime_id)
    if match is None:
        raise ValueError(f"not a Node.js runtime id: {runtime_id!r}")
    return int(match.group(1))


def runtime_files() -> list[Path]:
    """What /var/runtime holds: the bootstrap and the runtime's modules."""
    return sorted(
        p
        for p in RUNTIME_SOURCE.iterdir()
        if p.is_file() and (p.name == "bootstrap" or p.suffix == ".mjs")
    )


class NodeJS:
    family = "nodejs"
    needs_runtime_dir = True

    def install(self, runtime: Runtime, target: Path, say: Callable[[str], None]) -> bool:
        """Copy the runtime into ``target``; refuse a ``node`` older than 18."""
        major = major_version(runtime.id)
        if major < MIN_MAJOR:
            say(f"  not installing {runtime.id}: lambdaplane's runtime needs Node.js {MIN_MAJOR}+")
            return False
        say(f"installing {runtime.id} runtime (lambdaplane's Node.js runtime client)")
        for source in runtime_files():
            shutil.copyfile(source, target / source.name)
        (target / "bootstrap").chmod(0o755)
        return True

    def environment(self, runtime: Runtime) -> dict[str, str]:
        major = major_version(runtime.id)
        return {
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime.id}",
            "NODE_PATH": (
                f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:"
                "/var/runtime/node_modules:/var/runtime:/var/task"
            ),
        }

    def argv(self, runtime: Runtime, handler: str, code_dir: Path) -> list[str]:
        """The bootstrap, told where the host's ``node`` is (the handler is in _HANDLER)."""
        assert runtime.executable is not None
        return ["/var/runtime/bootstrap", runtime.executable]


LANGUAGE = NodeJS()
