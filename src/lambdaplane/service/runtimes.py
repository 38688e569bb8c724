"""Which Lambda runtimes this host can run, found once at start.

A runtime is offered only when its interpreter exists here: ``python3.X`` needs a
real ``python3.X`` binary (never a pyenv shim, which costs ~90 ms per start),
``nodejsNN.x`` a ``node`` of major NN, ``javaNN`` a JDK of that major (``java`` on
PATH or under /usr/lib/jvm), and ``rubyX.Y`` a ``ruby`` of that version. ``provided.al2``/``provided.al2023`` need
nothing but the function's own ``bootstrap``.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lambdaplane.errors import InvalidParameterValueException

# Runtimes AWS has retired for creates and updates (AWS's own list of deprecated ids).
DEPRECATED = frozenset(
    {
        "nodejs",
        "nodejs4.3",
        "nodejs4.3-edge",
        "nodejs6.10",
        "nodejs8.10",
        "nodejs10.x",
        "nodejs12.x",
        "nodejs14.x",
        "java8",
        "python2.7",
        "python3.6",
        "python3.7",
        "dotnetcore1.0",
        "dotnetcore2.0",
        "dotnetcore2.1",
        "dotnetcore3.1",
        "go1.x",
        "ruby2.5",
        "ruby2.7",
        "provided",
    }
)

ALWAYS_AVAILABLE = ("provided.al2", "provided.al2023")


@dataclass(frozen=True)
class Runtime:
    """A runtime this host runs: its Lambda id and the interpreter that backs it.

    ``runtime_dir`` is what the sandbox mounts at /var/runtime (the runtime interface
    client and the SDK, as on AWS); ``prefix`` is the interpreter's installation, which
    the sandbox mounts read-only at the same path.
    """

    id: str
    executable: str | None
    runtime_dir: Path | None = None

    @property
    def family(self) -> str:
        """python, nodejs, java, ruby or provided."""
        if self.id.startswith("provided"):
            return "provided"
        return re.sub(r"[\d.]+(\.x)?$", "", self.id)

    @property
    def prefix(self) -> Path | None:
        """The interpreter's installation prefix (``…/bin/python3.X`` → ``…``)."""
        if self.executable is None:
            return None
        return Path(self.executable).parent.parent

    def site_dirs(self) -> list[str]:
        """The interpreter's own package directories (hidden from functions)."""
        if self.family != "python" or self.prefix is None:
            return []
        version = self.id.removeprefix("python")
        candidates = [
            self.prefix / "lib" / f"python{version}" / "site-packages",
            self.prefix / "lib" / f"python{version}" / "dist-packages",
            self.prefix / "local" / "lib" / f"python{version}" / "dist-packages",
        ]
        if self.prefix == Path("/usr"):
            candidates.append(Path("/usr/lib/python3/dist-packages"))
        return [str(c) for c in candidates if c.is_dir()]

    def version_arn(self, region: str, partition: str = "aws") -> str:
        digest = hashlib.sha256(f"lambdaplane:{self.id}:{self.executable}".encode()).hexdigest()
        return f"arn:{partition}:lambda:{region}::runtime:{digest}"


class RuntimeCatalog:
    """The runtimes offered; refuses others with AWS's messages."""

    def __init__(self, runtimes: Iterable[Runtime]) -> None:
        self._by_id = {r.id: r for r in runtimes}

    @property
    def ids(self) -> list[str]:
        return sorted(self._by_id)

    def get(self, runtime_id: str) -> Runtime | None:
        return self._by_id.get(runtime_id)

    def require(self, runtime_id: str) -> Runtime:
        """The runtime, or InvalidParameterValueException worded as AWS words it."""
        runtime = self._by_id.get(runtime_id)
        if runtime is not None:
            return runtime
        if runtime_id in DEPRECATED:
            raise InvalidParameterValueException(
                f"The runtime parameter of {runtime_id} is no longer supported for creating or "
                "updating AWS Lambda functions. We recommend you use a supported runtime while "
                "creating or updating functions."
            )
        raise InvalidParameterValueException(
            f"Value {runtime_id} at 'runtime' failed to satisfy constraint: Member must satisfy "
            f"enum value set: [{', '.join(self.ids)}] or be a valid ARN"
        )


def _version_of(command: list[str], pattern: str, environ: Mapping[str, str]) -> str | None:
    try:
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=10, env=dict(environ), check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(pattern, out.stdout + out.stderr)
    return match.group(1) if match else None


def _search_path(environ: Mapping[str, str]) -> list[str]:
    return [p for p in environ.get("PATH", "").split(os.pathsep) if p and "shims" not in p]


def discover(
    environ: Mapping[str, str] | None = None, runtimes_dir: Path | None = None
) -> RuntimeCatalog:
    """Probe the host for the runtimes lambdaplane can launch (call once at start).

    A runtime needs a language module (``lambdaplane.languages``), its interpreter, and,
    for most, its installed /var/runtime tree (``lambdaplane install-runtimes``);
    without ``runtimes_dir`` every found interpreter counts.
    """
    from lambdaplane.languages import registry

    languages = registry()
    offered = []
    for runtime in find_interpreters(environ):
        language = languages.get(runtime.family)
        if language is None:
            continue  # An interpreter lambdaplane has no runtime for (yet).
        if language.needs_runtime_dir and runtimes_dir is not None:
            tree = runtimes_dir / runtime.id
            if not (tree / INSTALLED_MARKER).exists():
                continue
            runtime = Runtime(runtime.id, runtime.executable, tree)
        offered.append(runtime)
    return RuntimeCatalog(offered)


INSTALLED_MARKER = ".lambdaplane-installed"


# The Java runtimes AWS offers (java8.al2 aside: lambdaplane's runtime needs Java 11).
JAVA_MAJORS = (11, 17, 21, 25)
JVM_ROOT = Path("/usr/lib/jvm")


def _java_major(java: str, environ: Mapping[str, str]) -> str | None:
    """The JDK's major version, from its ``release`` file (no JVM start), else ``java -version``."""
    try:
        release = (Path(java).parent.parent / "release").read_text()
    except OSError:
        return _version_of([java, "-version"], r'version "(\d+)', environ)
    match = re.search(r'^JAVA_VERSION="(\d+)', release, re.MULTILINE)
    return match.group(1) if match else None


def find_javas(path: str, environ: Mapping[str, str], jvm_root: Path = JVM_ROOT) -> list[Runtime]:
    """``javaNN`` for each JDK of a major AWS offers: ``java`` on PATH first, then the JDKs
    under /usr/lib/jvm. The executable is the resolved path: /usr/bin/java goes through
    /etc/alternatives, which the sandbox does not have."""
    candidates = [shutil.which("java", path=path)]
    candidates += sorted(glob.glob(f"{jvm_root}/*/bin/java"))
    javas: dict[str, str] = {}
    for exe in candidates:
        if exe is None or not os.access(exe, os.X_OK):
            continue
        real = os.path.realpath(exe)
        if real in javas.values():
            continue
        major = _java_major(real, environ)
        if major and int(major) in JAVA_MAJORS:
            javas.setdefault(f"java{major}", real)
    return [Runtime(rid, exe) for rid, exe in javas.items()]


def find_interpreters(environ: Mapping[str, str] | None = None) -> list[Runtime]:
    """Every runtime whose interpreter exists here (a few subprocesses)."""
    env = dict(os.environ if environ is None else environ)
    path = os.pathsep.join(_search_path(env))
    found: list[Runtime] = [Runtime(r, None) for r in ALWAYS_AVAILABLE]

    pythons: dict[str, str] = {}
    candidates = [shutil.which(f"python3.{minor}", path=path) for minor in range(9, 15)]
    pyenv_root = env.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.*/bin/python3.*[0-9]"))
    for exe in candidates:
        if exe is None:
            continue
        match = re.search(r"python(3\.\d+)$", exe)
        if match and int(match.group(1).split(".")[1]) >= 9 and os.access(exe, os.X_OK):
            pythons.setdefault(f"python{match.group(1)}", os.path.realpath(exe))
    found += [Runtime(rid, exe) for rid, exe in pythons.items()]

    node = shutil.which("node", path=path)
    if node:
        major = _version_of([node, "--version"], r"v(\d+)\.", env)
        if major:
            found.append(Runtime(f"nodejs{major}.x", node))
    found += find_javas(path, env)
    ruby = shutil.which("ruby", path=path)
    if ruby:
        version = _version_of([ruby, "--version"], r"ruby (\d+\.\d+)", env)
        if version:
            found.append(Runtime(f"ruby{version}", ruby))
    return [r for r in found if r.id not in DEPRECATED]
