"""Build each runtime's /var/runtime tree, once (``lambdaplane install-runtimes``).

Each language builds its own tree (``lambdaplane.languages``) into a staging directory
that is renamed into place with a marker, so a half-built tree is never offered.
Idempotent: a tree with its marker is left alone.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from lambdaplane.languages import registry
from lambdaplane.service.runtimes import INSTALLED_MARKER, Runtime, find_interpreters


def fingerprint(runtime: Runtime) -> str:
    """What a built tree depends on: the language's module and assets, and the interpreter.

    A tree whose marker holds another fingerprint is rebuilt, so upgrading lambdaplane
    (or the host's interpreter) never leaves a stale /var/runtime behind.
    """
    import lambdaplane.languages

    base = Path(lambdaplane.languages.__file__).parent
    digest = hashlib.sha256(f"{runtime.id}\0{runtime.executable}\0".encode())
    sources = [
        base / f"{runtime.family}.py",
        *sorted((base / f"{runtime.family}_runtime").rglob("*")),
    ]
    for path in sources:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def install_runtime(runtime: Runtime, runtimes_dir: Path, say: Callable[[str], None]) -> bool:
    """Build ``runtimes_dir/<id>``; False (with the reason said) when it cannot be built."""
    language = registry().get(runtime.family)
    if language is None or not language.needs_runtime_dir:
        return language is not None
    target = runtimes_dir / runtime.id
    marker = target / INSTALLED_MARKER
    wanted = fingerprint(runtime)
    if marker.exists() and marker.read_text().strip() == wanted:
        return True
    staging = runtimes_dir / f".{runtime.id}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if not language.install(runtime, staging, say):
        shutil.rmtree(staging, ignore_errors=True)
        return False
    (staging / INSTALLED_MARKER).write_text(wanted + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return True


def install_all(runtimes_dir: Path, say: Callable[[str], None] = print) -> list[str]:
    """Install every runtime whose interpreter exists here; the ids ready to offer."""
    runtimes_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for runtime in find_interpreters():
        if install_runtime(runtime, runtimes_dir, say):
            done.append(runtime.id)
    return sorted(done)
