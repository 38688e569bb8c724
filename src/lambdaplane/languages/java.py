"""Java 11, 17, 21 and 25 on the host's JDKs, with lambdaplane's own Java runtime.

/var/runtime holds ``lambdaplane-java-runtime.jar``: the ``com.amazonaws.services.lambda.runtime``
interfaces functions compile against (aws-lambda-java-core's signatures) and the runtime loop
``lambdaplane.runtime.Main``, compiled at install time by the JDK's own ``javac`` from
``java_runtime/`` (one directory per Java package). Beside it, ``bootstrap`` (copied from
there) sizes the heap from the function's memory, as AWS's launcher does, runs
``AWS_LAMBDA_EXEC_WRAPPER`` if the function sets one, and starts the JVM.

The JVM runs from the host's JDK under /usr, which the sandbox mounts, unless the JDK's files
point outside what the sandbox shows: Debian's OpenJDK links its configuration
(``java.security``, ``jvm.cfg``) into /etc/java-NN-openjdk, which the sandbox does not have.
Such a JDK is linked into a self-contained image at /var/runtime/jdk with ``jlink`` (all of
its modules, as a full JDK offers them), with a class-data-sharing archive made for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from lambdaplane.service.runtimes import Runtime

SOURCES = Path(__file__).parent / "java_runtime"
RUNTIME_JAR = "lambdaplane-java-runtime.jar"
MAIN_CLASS = "lambdaplane.runtime.Main"
# AWS's runtime loads /var/task, /var/task/lib/*.jar and a layer's /opt/java/lib/*.jar.
CLASSPATH = f"/var/runtime/{RUNTIME_JAR}:/var/task:/var/task/lib/*:/opt/java/lib/*"
IMAGE_DIR = "jdk"  # the jlink'd JDK, when the host's cannot run in the sandbox
# The sources are Java 11, so that one jar serves every runtime and any javac can compile
# against it. String concatenation is compiled inline: invokedynamic's bootstrap costs ~10 ms
# of every cold start.
JAVAC_OPTIONS = ("--release", "11", "-XDstringConcat=inline", "-encoding", "UTF-8", "-nowarn")
# The launcher of AWS's Java runtimes starts the JVM with these (the heap comes from bootstrap).
JVM_OPTIONS = ("-XX:+UseSerialGC", "--add-opens=java.base/java.io=ALL-UNNAMED")
# From Java 17 on, crash reports go to stderr (the log) and tiered compilation stops at C1,
# which AWS documents as the default of java17, java21 and java25.
JVM_OPTIONS_17 = ("-XX:+ErrorFileToStderr", "-XX:+TieredCompilation", "-XX:TieredStopAtLevel=1")
# Sizes the heap from the function's memory and honours AWS_LAMBDA_EXEC_WRAPPER.
BOOTSTRAP = SOURCES / "bootstrap"


def major_version(runtime_id: str) -> int:
    """``java17`` → 17."""
    return int(runtime_id.removeprefix("java"))


def jvm_options(runtime_id: str) -> list[str]:
    """The JVM options AWS's launcher passes for this runtime (heap aside)."""
    options = list(JVM_OPTIONS)
    if major_version(runtime_id) >= 17:
        options += JVM_OPTIONS_17
    return options


def sources() -> list[Path]:
    """Every Java source of the runtime jar, in a stable order."""
    return sorted(SOURCES.rglob("*.java"))


# What of the host the sandbox shows at the same path (lambdaplane.sandbox.bubblewrap).
SANDBOX_PATHS = (Path("/usr"), Path("/etc/ssl/certs"))


def links_outside(home: Path, roots: tuple[Path, ...] = SANDBOX_PATHS) -> list[Path]:
    """The symbolic links under ``home`` that resolve outside it and every one of ``roots``
    (the sandbox mounts the JDK's own directory too, wherever it is)."""
    found = []
    inside = (Path(os.path.realpath(home)), *roots)
    for directory, dirs, files in os.walk(home):
        for name in dirs + files:
            path = Path(directory) / name
            if path.is_symlink():
                resolved = Path(os.path.realpath(path))
                if not any(resolved.is_relative_to(root) for root in inside):
                    found.append(path)
    return found


class Java:
    family = "java"
    needs_runtime_dir = True

    def install(self, runtime: Runtime, target: Path, say: Callable[[str], None]) -> bool:
        """Compile the runtime jar with the JDK's javac; jlink the JDK if it cannot run as is."""
        assert runtime.executable is not None
        java = Path(runtime.executable)
        home = java.parent.parent
        javac = java.with_name("javac")
        if not javac.exists():
            say(f"  cannot install {runtime.id}: {home} has no javac (a JRE, not a JDK)")
            return False
        say(f"installing {runtime.id} runtime (lambdaplane Java runtime on {home})")
        escaping = links_outside(home)
        if escaping and not _link_image(java, target / IMAGE_DIR, escaping[0], say):
            return False
        if not _compile(javac, target / RUNTIME_JAR, say):
            return False
        shutil.copyfile(BOOTSTRAP, target / "bootstrap")
        (target / "bootstrap").chmod(0o755)
        return True

    def environment(self, runtime: Runtime) -> dict[str, str]:
        return {"AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime.id}"}

    def argv(self, runtime: Runtime, handler: str, code_dir: Path) -> list[str]:
        return [
            "/bin/sh",
            "/var/runtime/bootstrap",
            _java_in_sandbox(runtime),
            *jvm_options(runtime.id),
            "-classpath",
            CLASSPATH,
            MAIN_CLASS,
            handler,
        ]


def _java_in_sandbox(runtime: Runtime) -> str:
    """The jlink'd image's java when install made one, else the host JDK's (under /usr)."""
    if runtime.runtime_dir is not None and (runtime.runtime_dir / IMAGE_DIR).is_dir():
        return f"/var/runtime/{IMAGE_DIR}/bin/java"
    assert runtime.executable is not None
    return runtime.executable


def _run(command: list[str], what: str, say: Callable[[str], None]) -> bool:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        say(f"  {what} failed: {(result.stderr or result.stdout).strip()[-800:]}")
    return result.returncode == 0


def _link_image(java: Path, image: Path, reason: Path, say: Callable[[str], None]) -> bool:
    home = java.parent.parent
    jlink, jmods = java.with_name("jlink"), home / "jmods"
    if not jlink.exists() or not jmods.is_dir():
        say(f"  cannot install: {reason} points outside the sandbox and {home} has no jmods")
        return False
    say(f"  {reason} points outside the sandbox: linking a self-contained JDK image")
    link = [
        str(jlink), "--module-path", str(jmods), "--add-modules", "ALL-MODULE-PATH",
        "--strip-debug", "--no-header-files", "--no-man-pages", "--output", str(image),
    ]  # fmt: skip
    if not _run(link, "jlink", say):
        return False
    # The default CDS archive, made for this image (jlink's own plugin is not in every JDK).
    return _run([str(image / "bin" / "java"), "-Xshare:dump"], "the CDS archive", say)


def _compile(javac: Path, jar: Path, say: Callable[[str], None]) -> bool:
    with tempfile.TemporaryDirectory(prefix="lambdaplane-javac-") as classes:
        command = [str(javac), *JAVAC_OPTIONS, "-d", classes, *map(str, sources())]
        if not _run(command, "javac", say):
            return False
        _write_jar(Path(classes), jar)
    return True


def _write_jar(classes: Path, jar: Path) -> None:
    """A jar is a zip with a manifest. Entries are stored, not deflated (nothing to inflate at
    class loading), with fixed timestamps so that every install makes the same jar."""
    with zipfile.ZipFile(jar, "w") as zf:
        manifest = f"Manifest-Version: 1.0\r\nMain-Class: {MAIN_CLASS}\r\n\r\n"
        zf.writestr(zipfile.ZipInfo("META-INF/MANIFEST.MF", (2020, 1, 1, 0, 0, 0)), manifest)
        for path in sorted(p for p in classes.rglob("*") if p.is_file()):
            name = path.relative_to(classes).as_posix()
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), path.read_bytes())


LANGUAGE = Java()
