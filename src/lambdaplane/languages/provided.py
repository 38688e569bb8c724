"""Custom runtimes (``provided.al2023``, ``provided.al2``): the function's own ``bootstrap``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lambdaplane.service.runtimes import Runtime


class Provided:
    family = "provided"
    needs_runtime_dir = False

    def install(self, runtime: Runtime, target: Path, say: Callable[[str], None]) -> bool:
        return True

    def environment(self, runtime: Runtime) -> dict[str, str]:
        return {}

    def argv(self, runtime: Runtime, handler: str, code_dir: Path) -> list[str]:
        """``bootstrap`` from the function's code, else from a layer (``/opt``), as on AWS."""
        if (code_dir / "bootstrap").exists():
            return ["/var/task/bootstrap"]
        return ["/opt/bootstrap"]


LANGUAGE = Provided()
