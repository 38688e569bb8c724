"""Ruby on the host's interpreter, with lambdaplane's own runtime interface client.

The client (``ruby_runtime/``, standard library only) is copied to /var/runtime at
install time and started by the agent as ``ruby --disable-gems
/var/runtime/bootstrap.rb``; it speaks the HTTP Runtime API. The runtime id is the
host's real Ruby version (Debian 12: ``ruby3.1``), never one AWS offers but this host
lacks. Variables follow AWS's Ruby runtimes: gems from the function's vendor/bundle and
from layers (/opt/ruby/gems/X.Y.0), libraries from /var/task and /opt/ruby/lib.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from lambdaplane.service.runtimes import Runtime

CLIENT_DIR = Path(__file__).parent / "ruby_runtime"
BOOTSTRAP = "/var/runtime/bootstrap.rb"


def abi_version(runtime_id: str) -> str:
    """Ruby's library version for a runtime id: ``ruby3.1`` -> ``3.1.0`` (gem paths use it)."""
    return runtime_id.removeprefix("ruby") + ".0"


class Ruby:
    family = "ruby"
    needs_runtime_dir = True

    def install(self, runtime: Runtime, target: Path, say: Callable[[str], None]) -> bool:
        """Copy the runtime interface client, after checking the interpreter is the
        version the id names and that it compiles every file of the client."""
        assert runtime.executable is not None
        say(f"installing {runtime.id} runtime (lambdaplane's Ruby runtime interface client)")
        files = sorted(CLIENT_DIR.rglob("*.rb"))
        check = (
            "print RUBY_VERSION.split('.')[0, 2].join('.');"
            " ARGV.each { |f| RubyVM::InstructionSequence.compile_file(f) }"
        )
        result = subprocess.run(
            [runtime.executable, "--disable-gems", "-e", check, *map(str, files)],
            capture_output=True,
            text=True,
            check=False,
        )
        expected = runtime.id.removeprefix("ruby")
        if result.returncode != 0 or result.stdout != expected:
            reason = result.stderr.strip()[-500:] or f"ruby reports version {result.stdout!r}"
            say(f"  could not install {runtime.id}: {reason}")
            return False
        for source in files:
            destination = target / source.relative_to(CLIENT_DIR)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
        return True

    def environment(self, runtime: Runtime) -> dict[str, str]:
        abi = abi_version(runtime.id)
        return {
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime.id}",
            "GEM_HOME": "/var/runtime",
            "GEM_PATH": f"/var/task/vendor/bundle/ruby/{abi}:/opt/ruby/gems/{abi}:/var/runtime:/var/runtime/ruby/{abi}",
            "RUBYLIB": "/var/task:/var/runtime/lib:/opt/ruby/lib",
        }

    def argv(self, runtime: Runtime, handler: str, code_dir: Path) -> list[str]:
        assert runtime.executable is not None
        return [runtime.executable, "--disable-gems", BOOTSTRAP]


LANGUAGE = Ruby()
