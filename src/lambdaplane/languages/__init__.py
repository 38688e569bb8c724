"""The languages lambdaplane runs: one module per runtime family, behind one interface.

A ``Language`` says how to build a runtime's /var/runtime tree at install time
(``lambdaplane install-runtimes``), which variables AWS sets for it, and which process
the agent starts inside the sandbox (the runtime interface client, or the function's
own ``bootstrap``). Adding a language is adding a module here and registering it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Protocol

from lambdaplane.service.runtimes import Runtime


class Language(Protocol):
    family: str
    # True when the runtime is offered only once ``install`` has built its tree.
    needs_runtime_dir: bool

    def install(self, runtime: Runtime, target: Path, say: Callable[[str], None]) -> bool:
        """Build ``target`` (mounted at /var/runtime); False, with the reason said, if not."""
        ...

    def environment(self, runtime: Runtime) -> dict[str, str]:
        """The variables AWS sets for this runtime (AWS_EXECUTION_ENV, NODE_PATH, …)."""
        ...

    def argv(self, runtime: Runtime, handler: str, code_dir: Path) -> list[str]:
        """The runtime process the agent starts inside the sandbox."""
        ...


# Each module defines ``LANGUAGE``; a module that is absent simply is not offered.
MODULES = ("python", "provided", "nodejs", "java", "ruby")


@cache
def registry() -> dict[str, Language]:
    """Every language, by family."""
    languages: dict[str, Language] = {}
    for name in MODULES:
        try:
            module = importlib.import_module(f"lambdaplane.languages.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"lambdaplane.languages.{name}":
                raise
            continue
        language: Language = module.LANGUAGE
        languages[language.family] = language
    return languages


def for_runtime(runtime: Runtime) -> Language:
    return registry()[runtime.family]
